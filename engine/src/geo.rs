//! GeoJSON geometry tests for `$geoWithin`, `$geoIntersects` and `$nearSphere`.
//!
//! Approximation (documented): containment and intersection treat longitude/latitude as planar
//! coordinates, i.e. polygon and line edges are straight lines on an equirectangular map rather than
//! great-circle arcs as in MongoDB's 2dsphere. The two agree on vertices and differ only along long edges
//! (well under 0.1% of an edge for city-scale shapes) and near the poles; shapes crossing the
//! antimeridian are not supported. Distances (`$centerSphere`, `$nearSphere`) are true spherical
//! distances (haversine) on MongoDB's earth radius.

use crate::error::{DbError, DbResult};
use serde_json::Value;

/// The earth radius MongoDB uses for spherical geometry, in metres.
pub const EARTH_RADIUS_M: f64 = 6_378_100.0;

/// A position `(longitude, latitude)` in degrees.
pub type Position = (f64, f64);

/// A polygon: outer ring first, then holes; every ring closed (first == last).
pub type Polygon = Vec<Vec<Position>>;

/// A GeoJSON geometry decomposed into points, line strings and polygons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geometry {
    /// Point and MultiPoint members.
    pub points: Vec<Position>,
    /// LineString and MultiLineString members.
    pub lines: Vec<Vec<Position>>,
    /// Polygon and MultiPolygon members.
    pub polygons: Vec<Polygon>,
}

impl Geometry {
    fn vertices(&self) -> impl Iterator<Item = Position> + '_ {
        self.points
            .iter()
            .copied()
            .chain(self.lines.iter().flatten().copied())
            .chain(self.polygons.iter().flatten().flatten().copied())
    }

    fn segments(&self) -> Vec<(Position, Position)> {
        let mut out = Vec::new();
        for path in self.lines.iter().chain(self.polygons.iter().flatten()) {
            out.extend(path.windows(2).map(|w| (w[0], w[1])));
        }
        out
    }

    /// One representative position of every connected member (to detect containment).
    fn anchors(&self) -> Vec<Position> {
        let mut out = self.points.clone();
        out.extend(self.lines.iter().filter_map(|l| l.first().copied()));
        out.extend(
            self.polygons
                .iter()
                .filter_map(|p| p.first().and_then(|r| r.first().copied())),
        );
        out
    }
}

/// A stored value read as a geometry: a GeoJSON object or a legacy `[lng, lat]` pair. Lenient: anything
/// else (or malformed GeoJSON) is simply not a geometry.
pub fn stored_geometry(value: &Value) -> Option<Geometry> {
    match value {
        Value::Array(items) if items.len() == 2 => Some(Geometry {
            points: vec![position(value)?],
            ..Default::default()
        }),
        Value::Object(_) => parse_geojson(value).ok(),
        _ => None,
    }
}

/// Parses a GeoJSON geometry strictly (query operands): valid ranges, closed rings of ≥ 4 positions.
pub fn parse_geojson(value: &Value) -> DbResult<Geometry> {
    let bad = |what: &str| DbError::invalid_param(format!("invalid GeoJSON: {what}"));
    let map = value
        .as_object()
        .ok_or_else(|| bad("geometry must be an object"))?;
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing type"))?;
    let coords = map
        .get("coordinates")
        .ok_or_else(|| bad("missing coordinates"))?;
    let mut geometry = Geometry::default();
    match kind {
        "Point" => geometry.points.push(parse_position(coords)?),
        "MultiPoint" => geometry.points = parse_list(coords, parse_position)?,
        "LineString" => geometry.lines.push(parse_line(coords)?),
        "MultiLineString" => geometry.lines = parse_list(coords, parse_line)?,
        "Polygon" => geometry.polygons.push(parse_polygon(coords)?),
        "MultiPolygon" => geometry.polygons = parse_list(coords, parse_polygon)?,
        other => return Err(bad(&format!("unsupported type {other}"))),
    }
    Ok(geometry)
}

fn position(value: &Value) -> Option<Position> {
    let items = value.as_array()?;
    if items.len() < 2 {
        return None;
    }
    let (lng, lat) = (items[0].as_f64()?, items[1].as_f64()?);
    ((-180.0..=180.0).contains(&lng) && (-90.0..=90.0).contains(&lat)).then_some((lng, lat))
}

fn parse_position(value: &Value) -> DbResult<Position> {
    position(value).ok_or_else(|| {
        DbError::invalid_param(format!(
            "invalid GeoJSON position {value}: expected [longitude -180..180, latitude -90..90]"
        ))
    })
}

fn parse_list<T>(value: &Value, item: impl Fn(&Value) -> DbResult<T>) -> DbResult<Vec<T>> {
    value
        .as_array()
        .ok_or_else(|| DbError::invalid_param("invalid GeoJSON: coordinates must be an array"))?
        .iter()
        .map(item)
        .collect()
}

fn parse_line(value: &Value) -> DbResult<Vec<Position>> {
    let line = parse_list(value, parse_position)?;
    if line.len() < 2 {
        return Err(DbError::invalid_param(
            "invalid GeoJSON: a LineString needs at least 2 positions",
        ));
    }
    Ok(line)
}

fn parse_polygon(value: &Value) -> DbResult<Polygon> {
    let rings = parse_list(value, |ring| parse_list(ring, parse_position))?;
    if rings.is_empty() {
        return Err(DbError::invalid_param(
            "invalid GeoJSON: a Polygon needs at least one ring",
        ));
    }
    for ring in &rings {
        if ring.len() < 4 || ring.first() != ring.last() {
            return Err(DbError::invalid_param(
                "invalid GeoJSON: polygon rings must be closed (first = last) with at least 4 positions",
            ));
        }
    }
    Ok(rings)
}

/// Great-circle distance in metres (haversine, earth radius 6378100 m).
pub fn haversine_m(a: Position, b: Position) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The smallest distance in metres from `center` to a vertex of `geometry` (exact for points).
pub fn min_distance_m(geometry: &Geometry, center: Position) -> Option<f64> {
    geometry
        .vertices()
        .map(|v| haversine_m(center, v))
        .reduce(f64::min)
}

/// True when every vertex lies within `radius_m` of `center` (a spherical cap is convex, so the edges do too).
pub fn within_circle(geometry: &Geometry, center: Position, radius_m: f64) -> bool {
    let mut vertices = geometry.vertices().peekable();
    vertices.peek().is_some()
        && geometry
            .vertices()
            .all(|v| haversine_m(center, v) <= radius_m)
}

/// True when `geometry` lies entirely within the union of `area` (boundary included).
pub fn within_polygons(geometry: &Geometry, area: &[Polygon]) -> bool {
    let inside = |p: Position| area.iter().any(|poly| point_in_polygon(p, poly));
    if geometry.vertices().next().is_none() || !geometry.vertices().all(inside) {
        return false;
    }
    // Edges: their midpoints must be inside too and they must not properly cross the area's boundary
    // (catches edges that leave a concave area between two inside vertices).
    let boundary: Vec<(Position, Position)> = area
        .iter()
        .flatten()
        .flat_map(|ring| ring.windows(2).map(|w| (w[0], w[1])))
        .collect();
    geometry.segments().iter().all(|&(a, b)| {
        inside(((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0))
            && !boundary.iter().any(|&(c, d)| segments_cross(a, b, c, d))
    })
}

/// True when the two geometries share at least one point (boundaries included).
pub fn intersects(a: &Geometry, b: &Geometry) -> bool {
    let (sa, sb) = (a.segments(), b.segments());
    if sa
        .iter()
        .any(|&(p, q)| sb.iter().any(|&(r, s)| segments_intersect(p, q, r, s)))
    {
        return true;
    }
    let covers = |g: &Geometry, segs: &[(Position, Position)], p: Position| {
        g.points.contains(&p)
            || segs.iter().any(|&(r, s)| on_segment(p, r, s))
            || g.polygons.iter().any(|poly| point_in_polygon(p, poly))
    };
    a.anchors().into_iter().any(|p| covers(b, &sb, p))
        || b.anchors().into_iter().any(|p| covers(a, &sa, p))
}

/// Point in polygon with holes; points on any boundary count as inside.
pub fn point_in_polygon(p: Position, polygon: &Polygon) -> bool {
    let Some((outer, holes)) = polygon.split_first() else {
        return false;
    };
    if on_ring(p, outer) {
        return true;
    }
    if !inside_ring(p, outer) {
        return false;
    }
    holes
        .iter()
        .all(|hole| on_ring(p, hole) || !inside_ring(p, hole))
}

fn on_ring(p: Position, ring: &[Position]) -> bool {
    ring.windows(2).any(|w| on_segment(p, w[0], w[1]))
}

fn inside_ring(p: Position, ring: &[Position]) -> bool {
    // Even-odd ray casting towards +x.
    let mut inside = false;
    for w in ring.windows(2) {
        let ((x1, y1), (x2, y2)) = (w[0], w[1]);
        if (y1 > p.1) != (y2 > p.1) {
            let x_at = x1 + (p.1 - y1) * (x2 - x1) / (y2 - y1);
            if p.0 < x_at {
                inside = !inside;
            }
        }
    }
    inside
}

const EPS: f64 = 1e-12;

fn orient(a: Position, b: Position, c: Position) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

fn sign(x: f64) -> i8 {
    if x > EPS {
        1
    } else if x < -EPS {
        -1
    } else {
        0
    }
}

fn on_segment(p: Position, a: Position, b: Position) -> bool {
    sign(orient(a, b, p)) == 0
        && p.0 >= a.0.min(b.0) - EPS
        && p.0 <= a.0.max(b.0) + EPS
        && p.1 >= a.1.min(b.1) - EPS
        && p.1 <= a.1.max(b.1) + EPS
}

/// Segments share a point (touching and collinear overlap included).
fn segments_intersect(a: Position, b: Position, c: Position, d: Position) -> bool {
    let (o1, o2, o3, o4) = (
        sign(orient(a, b, c)),
        sign(orient(a, b, d)),
        sign(orient(c, d, a)),
        sign(orient(c, d, b)),
    );
    if o1 != o2 && o3 != o4 {
        return true;
    }
    on_segment(c, a, b) || on_segment(d, a, b) || on_segment(a, c, d) || on_segment(b, c, d)
}

/// Segments cross at a single interior point of both (no touching).
fn segments_cross(a: Position, b: Position, c: Position, d: Position) -> bool {
    let (o1, o2, o3, o4) = (
        sign(orient(a, b, c)),
        sign(orient(a, b, d)),
        sign(orient(c, d, a)),
        sign(orient(c, d, b)),
    );
    o1 * o2 < 0 && o3 * o4 < 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn geom(v: Value) -> Geometry {
        parse_geojson(&v).unwrap()
    }

    fn square() -> Vec<Polygon> {
        geom(json!({"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]}))
            .polygons
    }

    #[test]
    fn haversine_known_distance() {
        // One degree of longitude on the equator: 2πR/360.
        let d = haversine_m((0.0, 0.0), (1.0, 0.0));
        assert!((d - 2.0 * std::f64::consts::PI * EARTH_RADIUS_M / 360.0).abs() < 1e-6);
        assert_eq!(haversine_m((113.3, 23.1), (113.3, 23.1)), 0.0);
    }

    #[test]
    fn within_polygon() {
        let area = square();
        assert!(within_polygons(
            &stored_geometry(&json!([1, 1])).unwrap(),
            &area
        ));
        assert!(
            within_polygons(&stored_geometry(&json!([3, 1])).unwrap(), &area),
            "boundary counts"
        );
        assert!(!within_polygons(
            &stored_geometry(&json!([4, 1])).unwrap(),
            &area
        ));
        let line = geom(json!({"type": "LineString", "coordinates": [[1, 1], [2, 2]]}));
        assert!(within_polygons(&line, &area));
        // An L-shaped (concave) area: a segment between two inside vertices that leaves it.
        let l_shape = geom(json!({"type": "Polygon",
            "coordinates": [[[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4], [0, 0]]]}))
        .polygons;
        let cutting = geom(json!({"type": "LineString", "coordinates": [[3, 0.5], [0.5, 3]]}));
        assert!(!within_polygons(&cutting, &l_shape));
    }

    #[test]
    fn polygon_holes() {
        let with_hole = geom(json!({"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]]}));
        assert!(point_in_polygon((2.0, 2.0), &with_hole.polygons[0]));
        assert!(!point_in_polygon((5.0, 5.0), &with_hole.polygons[0]));
    }

    #[test]
    fn intersections() {
        let area = geom(
            json!({"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]}),
        );
        let crossing = geom(json!({"type": "LineString", "coordinates": [[-1, 1], [5, 1]]}));
        let outside = geom(json!({"type": "LineString", "coordinates": [[5, 5], [6, 6]]}));
        let inner =
            geom(json!({"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}));
        let covering = geom(
            json!({"type": "Polygon", "coordinates": [[[-9, -9], [9, -9], [9, 9], [-9, -9]]]}),
        );
        assert!(intersects(&crossing, &area));
        assert!(!intersects(&outside, &area));
        assert!(intersects(&inner, &area), "contained polygon");
        assert!(intersects(&area, &covering), "containing polygon");
        assert!(
            intersects(
                &geom(json!({"type": "Point", "coordinates": [3, 3]})),
                &area
            ),
            "corner"
        );
        assert!(!intersects(
            &geom(json!({"type": "Point", "coordinates": [3.5, 3]})),
            &area
        ));
    }

    #[test]
    fn invalid_geojson_is_rejected() {
        assert!(parse_geojson(&json!({"type": "Point", "coordinates": [200, 0]})).is_err());
        assert!(parse_geojson(
            &json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]})
        )
        .is_err());
        assert!(parse_geojson(&json!({"type": "Circle", "coordinates": [0, 0]})).is_err());
        assert!(stored_geometry(&json!("nope")).is_none());
    }
}
