//! `db.Geo` values (api-surface.md §3.6): validated at construction, written as GeoJSON, and recognised
//! in results (GeoJSON → Geo objects).

use super::value::{Number, Obj, Value};

/// A longitude/latitude pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// Longitude, -180..=180.
    pub lng: Number,
    /// Latitude, -90..=90.
    pub lat: Number,
}

/// One of the six GeoJSON geometries the SDK supports.
#[derive(Clone, Debug, PartialEq)]
pub enum Geometry {
    Point(Position),
    LineString(Vec<Position>),
    Polygon(Vec<Vec<Position>>),
    MultiPoint(Vec<Position>),
    MultiLineString(Vec<Vec<Position>>),
    MultiPolygon(Vec<Vec<Vec<Position>>>),
}

/// The geometry kinds, by their GeoJSON `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Point,
    LineString,
    Polygon,
    MultiPoint,
    MultiLineString,
    MultiPolygon,
}

impl Kind {
    /// The GeoJSON `type`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Point => "Point",
            Kind::LineString => "LineString",
            Kind::Polygon => "Polygon",
            Kind::MultiPoint => "MultiPoint",
            Kind::MultiLineString => "MultiLineString",
            Kind::MultiPolygon => "MultiPolygon",
        }
    }

    /// The kind of a GeoJSON `type`.
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "Point" => Kind::Point,
            "LineString" => Kind::LineString,
            "Polygon" => Kind::Polygon,
            "MultiPoint" => Kind::MultiPoint,
            "MultiLineString" => Kind::MultiLineString,
            "MultiPolygon" => Kind::MultiPolygon,
            _ => return None,
        })
    }
}

/// A Geo construction error: `type_error` → -401003, else -401002.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoError {
    /// Whether the argument had the wrong type (rather than a bad value).
    pub type_error: bool,
    /// The message.
    pub message: String,
}

fn type_error(message: impl Into<String>) -> GeoError {
    GeoError {
        type_error: true,
        message: message.into(),
    }
}

fn value_error(message: impl Into<String>) -> GeoError {
    GeoError {
        type_error: false,
        message: message.into(),
    }
}

/// A validated position; the messages are the official SDK's.
pub fn position(lng: &Value, lat: &Value) -> Result<Position, GeoError> {
    // Messages are literals: formatting the f64 bounds would pull float formatting into the wasm.
    let check = |message: &str, value: &Value, bound: f64| -> Result<Number, GeoError> {
        let Value::Num(number) = value else {
            return Err(type_error(message));
        };
        if !(number.value >= -bound && number.value <= bound) {
            return Err(value_error(message));
        }
        Ok(number.clone())
    };
    Ok(Position {
        lng: check(
            "longitude should be a number ranges from -180 to 180",
            lng,
            180.0,
        )?,
        lat: check(
            "latitude should be a number ranges from -90 to 90",
            lat,
            90.0,
        )?,
    })
}

fn same(a: &Position, b: &Position) -> bool {
    a.lng.value == b.lng.value && a.lat.value == b.lat.value
}

/// Checks the shape rules: a LineString has ≥ 2 points, a polygon ring is closed with ≥ 4 points,
/// multi-geometries and polygons have ≥ 1 member.
pub fn validate(geometry: &Geometry) -> Result<(), GeoError> {
    fn line(points: &[Position]) -> Result<(), GeoError> {
        if points.len() < 2 {
            return Err(value_error("LineString must contain 2 points at least"));
        }
        Ok(())
    }
    fn polygon(rings: &[Vec<Position>]) -> Result<(), GeoError> {
        if rings.is_empty() {
            return Err(value_error("Polygon must contain 1 linestring at least"));
        }
        for ring in rings {
            if ring.len() < 4 || !same(&ring[0], &ring[ring.len() - 1]) {
                // Written by hand: `[..].join(",")` adds a copy of std's join to the wasm (bench/size.mjs).
                let mut text = String::from("LineString ");
                for (i, p) in ring.iter().enumerate() {
                    text.extend([
                        if i > 0 { ",[" } else { "[" },
                        &p.lng.text,
                        ",",
                        &p.lat.text,
                        "]",
                    ]);
                }
                text.push_str(" is not a closed cycle");
                return Err(value_error(text));
            }
        }
        Ok(())
    }
    match geometry {
        Geometry::Point(_) => Ok(()),
        Geometry::LineString(points) => line(points),
        Geometry::Polygon(rings) => polygon(rings),
        Geometry::MultiPoint(points) => {
            if points.is_empty() {
                return Err(value_error("MultiPoint must contain 1 point at least"));
            }
            Ok(())
        }
        Geometry::MultiLineString(lines) => {
            if lines.is_empty() {
                return Err(value_error(
                    "MultiLineString must contain 1 linestring at least",
                ));
            }
            lines.iter().try_for_each(|l| line(l))
        }
        Geometry::MultiPolygon(polygons) => {
            if polygons.is_empty() {
                return Err(value_error("MultiPolygon must contain 1 polygon at least"));
            }
            polygons.iter().try_for_each(|p| polygon(p))
        }
    }
}

fn coords(p: &Position) -> Value {
    Value::Array(vec![Value::Num(p.lng.clone()), Value::Num(p.lat.clone())])
}

fn line_coords(points: &[Position]) -> Value {
    Value::Array(points.iter().map(coords).collect())
}

fn polygon_coords(rings: &[Vec<Position>]) -> Value {
    Value::Array(rings.iter().map(|r| line_coords(r)).collect())
}

impl Geometry {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Geometry::Point(_) => Kind::Point,
            Geometry::LineString(_) => Kind::LineString,
            Geometry::Polygon(_) => Kind::Polygon,
            Geometry::MultiPoint(_) => Kind::MultiPoint,
            Geometry::MultiLineString(_) => Kind::MultiLineString,
            Geometry::MultiPolygon(_) => Kind::MultiPolygon,
        }
    }

    /// GeoJSON: `{"type": …, "coordinates": …}`.
    pub fn to_value(&self) -> Value {
        let coordinates = match self {
            Geometry::Point(p) => coords(p),
            Geometry::LineString(points) | Geometry::MultiPoint(points) => line_coords(points),
            Geometry::Polygon(rings) | Geometry::MultiLineString(rings) => polygon_coords(rings),
            Geometry::MultiPolygon(polygons) => {
                Value::Array(polygons.iter().map(|p| polygon_coords(p)).collect())
            }
        };
        let obj: Obj = vec![
            ("type".into(), Value::str(self.kind().name())),
            ("coordinates".into(), coordinates),
        ];
        Value::Object(obj)
    }
}

fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

fn positions(value: &Value) -> Option<Vec<Position>> {
    array(value)?
        .iter()
        .map(|p| match array(p)? {
            [lng, lat, ..] => position(lng, lat).ok(),
            _ => None,
        })
        .collect()
}

fn rings(value: &Value) -> Option<Vec<Vec<Position>>> {
    array(value)?.iter().map(positions).collect()
}

/// Reads GeoJSON `{type, coordinates}` of `kind` (a constructor argument or a result field); `None`
/// when it is not valid GeoJSON of that kind.
pub fn from_geojson(kind: Kind, coordinates: &Value) -> Option<Geometry> {
    let geometry = match kind {
        Kind::Point => match array(coordinates)? {
            [lng, lat] => Geometry::Point(position(lng, lat).ok()?),
            _ => return None,
        },
        Kind::LineString => Geometry::LineString(positions(coordinates)?),
        Kind::MultiPoint => Geometry::MultiPoint(positions(coordinates)?),
        Kind::Polygon => Geometry::Polygon(rings(coordinates)?),
        Kind::MultiLineString => Geometry::MultiLineString(rings(coordinates)?),
        Kind::MultiPolygon => Geometry::MultiPolygon(
            array(coordinates)?
                .iter()
                .map(rings)
                .collect::<Option<_>>()?,
        ),
    };
    validate(&geometry).ok()?;
    Some(geometry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::value::to_json;

    fn n(v: i64) -> Value {
        Value::Num(Number::int(v))
    }

    fn p(lng: i64, lat: i64) -> Position {
        position(&n(lng), &n(lat)).unwrap()
    }

    #[test]
    fn ranges_are_checked() {
        assert!(position(&n(180), &n(-90)).is_ok());
        let error = position(&n(181), &n(0)).unwrap_err();
        assert_eq!(
            (error.type_error, error.message.as_str()),
            (
                false,
                "longitude should be a number ranges from -180 to 180"
            )
        );
        assert!(!position(&n(0), &n(91)).unwrap_err().type_error);
        assert!(position(&Value::str("1"), &n(0)).unwrap_err().type_error);
    }

    #[test]
    fn rings_must_be_closed() {
        let open = Geometry::Polygon(vec![vec![p(0, 0), p(3, 0), p(3, 3), p(0, 1)]]);
        assert_eq!(
            validate(&open).unwrap_err().message,
            "LineString [0,0],[3,0],[3,3],[0,1] is not a closed cycle"
        );
        let closed = Geometry::Polygon(vec![vec![p(0, 0), p(3, 0), p(3, 3), p(0, 0)]]);
        assert!(validate(&closed).is_ok());
        assert_eq!(
            to_json(&closed.to_value()).unwrap(),
            r#"{"type":"Polygon","coordinates":[[[0,0],[3,0],[3,3],[0,0]]]}"#
        );
        assert!(validate(&Geometry::LineString(vec![p(0, 0)])).is_err());
        assert!(validate(&Geometry::MultiPolygon(vec![])).is_err());
    }

    #[test]
    fn geojson_round_trips() {
        let multi = Geometry::MultiPolygon(vec![vec![vec![p(0, 0), p(1, 0), p(1, 1), p(0, 0)]]]);
        let Value::Object(obj) = multi.to_value() else {
            panic!()
        };
        let back = from_geojson(Kind::MultiPolygon, &obj[1].1).unwrap();
        assert_eq!(back, multi);
        assert!(from_geojson(Kind::Point, &Value::Array(vec![n(200), n(0)])).is_none());
    }
}
