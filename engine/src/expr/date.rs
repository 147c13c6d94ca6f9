//! Date expression operators: parts, `$dateToString`/`$dateFromString`, `$dateToParts`/`$dateFromParts`.
//!
//! Time zones: `UTC`/`GMT`/`Z`, fixed offsets (`+08:00`, `+0800`, `+08`) and the Olson zones without
//! daylight saving that mini-program users meet (Asia/Shanghai and its neighbours). Other Olson names
//! are refused with a clear error rather than answered wrongly (docs/database-semantics.md).

use super::operators::{arg, is_nullish, nth, type_error, Num};
use super::{Args, Scope};
use crate::ejson;
use crate::error::{DbError, DbResult};
use serde_json::{Map, Value};

const DAY_MS: i64 = 86_400_000;

/// Olson zones with one fixed offset (minutes) all year.
const FIXED_ZONES: &[(&str, i64)] = &[
    ("Asia/Shanghai", 480),
    ("Asia/Chongqing", 480),
    ("Asia/Harbin", 480),
    ("Asia/Urumqi", 360),
    ("PRC", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
    ("Etc/UTC", 0),
    ("Etc/GMT", 0),
];

/// The UTC offset in minutes of a timezone argument.
fn parse_timezone(tz: &str) -> DbResult<i64> {
    if matches!(tz, "UTC" | "GMT" | "Z") {
        return Ok(0);
    }
    if let Some((_, offset)) = FIXED_ZONES.iter().find(|(name, _)| *name == tz) {
        return Ok(*offset);
    }
    parse_offset(tz).ok_or_else(|| {
        DbError::invalid_param(format!(
            "unrecognized time zone identifier: \"{tz}\" (cloud-emulator knows UTC, fixed offsets such as +08:00 and zones without daylight saving such as Asia/Shanghai)"
        ))
    })
}

/// `+08:00`, `+0800`, `+08`, `-05:30` → minutes.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m))
}

fn timezone_arg(args: &Args, index: usize, scope: &Scope<'_>) -> DbResult<Option<i64>> {
    match arg(args, index, scope)? {
        None if nth(args, index).is_none() => Ok(Some(0)),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(tz)) => parse_timezone(&tz).map(Some),
        other => Err(type_error("timezone", "a string", &other)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A date broken into its local parts.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
    /// 0 = Sunday.
    weekday: i64,
    day_of_year: i64,
    iso_year: i64,
    iso_week: i64,
}

impl Civil {
    fn of(ms: i64, offset_min: i64) -> Civil {
        // Dates span ±2^63 ms; clamp rather than overflow at the extremes.
        let local = ms.saturating_add(offset_min * 60_000);
        let days = local.div_euclid(DAY_MS);
        let rem = local.rem_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7);
        let iso_dow = (weekday + 6) % 7 + 1;
        let thursday = days - (iso_dow - 1) + 3;
        let iso_year = civil_from_days(thursday).0;
        let iso_week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
        Civil {
            year,
            month,
            day,
            hour: rem / 3_600_000,
            minute: rem / 60_000 % 60,
            second: rem / 1000 % 60,
            millisecond: rem % 1000,
            weekday,
            day_of_year: days - days_from_civil(year, 1, 1) + 1,
            iso_year,
            iso_week,
        }
    }

    fn iso_day_of_week(&self) -> i64 {
        (self.weekday + 6) % 7 + 1
    }

    /// `%U`: weeks starting on Sunday; days before the year's first Sunday are week 0.
    fn week(&self) -> i64 {
        (self.day_of_year - 1 + 7 - self.weekday) / 7
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn iso_string(ms: i64) -> String {
    let c = Civil::of(ms, 0);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millisecond
    )
}

fn date_ms(name: &str, v: &Option<Value>) -> DbResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(d) => match ejson::date_number(d) {
            Some(n) => Ok(Some(Num::of(n).f() as i64)),
            None => Err(type_error(name, "a date", v)),
        },
    }
}

/// Which part a date-part operator extracts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    Year,
    Month,
    DayOfMonth,
    Hour,
    Minute,
    Second,
    Millisecond,
    DayOfYear,
    DayOfWeek,
    Week,
    IsoWeekYear,
    IsoWeek,
    IsoDayOfWeek,
}

pub(super) fn part(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    which: Part,
) -> DbResult<Option<Value>> {
    let Some(ms) = date_ms(name, &arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let Some(offset) = timezone_arg(args, 1, scope)? else {
        return Ok(Some(Value::Null));
    };
    let c = Civil::of(ms, offset);
    let n = match which {
        Part::Year => c.year,
        Part::Month => c.month,
        Part::DayOfMonth => c.day,
        Part::Hour => c.hour,
        Part::Minute => c.minute,
        Part::Second => c.second,
        Part::Millisecond => c.millisecond,
        Part::DayOfYear => c.day_of_year,
        Part::DayOfWeek => c.weekday + 1,
        Part::Week => c.week(),
        Part::IsoWeekYear => c.iso_year,
        Part::IsoWeek => c.iso_week,
        Part::IsoDayOfWeek => c.iso_day_of_week(),
    };
    Ok(Some(Value::from(n)))
}

const DEFAULT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.%LZ";

fn format_offset(offset: i64) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    format!("{sign}{:02}{:02}", offset.abs() / 60, offset.abs() % 60)
}

pub(super) fn to_string(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let date = arg(args, 0, scope)?;
    if is_nullish(&date) {
        return match nth(args, 3) {
            Some(e) => e.eval_in(scope),
            None => Ok(Some(Value::Null)),
        };
    }
    let ms = date_ms("$dateToString", &date)?.expect("not null");
    let format = match arg(args, 1, scope)? {
        None if nth(args, 1).is_none() => DEFAULT_FORMAT.to_owned(),
        None | Some(Value::Null) => return Ok(Some(Value::Null)),
        Some(Value::String(f)) => f,
        other => return Err(type_error("$dateToString", "a string format", &other)),
    };
    let Some(offset) = timezone_arg(args, 2, scope)? else {
        return Ok(Some(Value::Null));
    };
    let c = Civil::of(ms, offset);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        let spec = chars.next().ok_or_else(|| {
            DbError::invalid_param("$dateToString: unmatched '%' at the end of the format")
        })?;
        let piece = match spec {
            'd' => format!("{:02}", c.day),
            'G' => format!("{:04}", c.iso_year),
            'H' => format!("{:02}", c.hour),
            'j' => format!("{:03}", c.day_of_year),
            'L' => format!("{:03}", c.millisecond),
            'm' => format!("{:02}", c.month),
            'M' => format!("{:02}", c.minute),
            'S' => format!("{:02}", c.second),
            'u' => c.iso_day_of_week().to_string(),
            'U' => format!("{:02}", c.week()),
            'V' => format!("{:02}", c.iso_week),
            'w' => (c.weekday + 1).to_string(),
            'Y' => format!("{:04}", c.year),
            'z' => format_offset(offset),
            'Z' => offset.to_string(),
            '%' => "%".to_owned(),
            other => {
                return Err(DbError::invalid_param(format!(
                    "$dateToString: invalid format character %{other}"
                )))
            }
        };
        out.push_str(&piece);
    }
    Ok(Some(Value::String(out)))
}

/// The fields of `$dateFromParts`, in argument order.
pub(super) const FROM_PARTS_FIELDS: &[&str] = &[
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "millisecond",
    "isoWeekYear",
    "isoWeek",
    "isoDayOfWeek",
    "timezone",
];

pub(super) fn from_parts(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let given = |i: usize| nth(args, i).is_some();
    let calendar = given(0);
    let iso = given(7);
    if calendar == iso {
        return Err(DbError::invalid_param(
            "$dateFromParts requires either 'year' or 'isoWeekYear' (not both)",
        ));
    }
    if iso && (1..=2).any(given) || calendar && (8..=9).any(given) {
        return Err(DbError::invalid_param(
            "$dateFromParts cannot mix calendar and ISO week-date parts",
        ));
    }
    let mut parts = [0i64; 10];
    for (i, slot) in parts.iter_mut().enumerate() {
        let default = if matches!(i, 1 | 2 | 8 | 9) { 1 } else { 0 };
        *slot = match arg(args, i, scope)? {
            None if !given(i) => default,
            None | Some(Value::Null) => return Ok(Some(Value::Null)),
            Some(Value::Number(n)) => match Num::of(&n) {
                Num::Int(v) => v,
                Num::Float(f) if f.fract() == 0.0 => f as i64,
                Num::Float(_) => {
                    return Err(DbError::invalid_param(format!(
                        "$dateFromParts: '{}' must be an integer",
                        FROM_PARTS_FIELDS[i]
                    )))
                }
            },
            other => return Err(type_error("$dateFromParts", "integer parts", &other)),
        };
    }
    let Some(offset) = timezone_arg(args, 10, scope)? else {
        return Ok(Some(Value::Null));
    };
    let year_index = if calendar { 0 } else { 7 };
    if !(1..=9999).contains(&parts[year_index]) {
        return Err(DbError::invalid_param(
            "$dateFromParts: the year must be between 1 and 9999",
        ));
    }
    // MongoDB's range for every other part (values outside a unit's own range carry over).
    if let Some(i) = (0..10).find(|&i| i != year_index && !(-32768..=32767).contains(&parts[i])) {
        return Err(DbError::invalid_param(format!(
            "$dateFromParts: '{}' must evaluate to an integer in the range -32768 to 32767",
            FROM_PARTS_FIELDS[i]
        )));
    }
    let days = if calendar {
        let months = parts[0] * 12 + parts[1] - 1;
        days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1) + parts[2] - 1
    } else {
        let jan4 = days_from_civil(parts[7], 1, 4);
        let monday = jan4 - ((jan4 + 4).rem_euclid(7) + 6) % 7;
        monday + (parts[8] - 1) * 7 + parts[9] - 1
    };
    let ms = days * DAY_MS + parts[3] * 3_600_000 + parts[4] * 60_000 + parts[5] * 1000 + parts[6]
        - offset * 60_000;
    Ok(Some(ejson::date_value(ms)))
}

pub(super) fn to_parts(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(ms) = date_ms("$dateToParts", &arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let Some(offset) = timezone_arg(args, 1, scope)? else {
        return Ok(Some(Value::Null));
    };
    let iso = match arg(args, 2, scope)? {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        other => return Err(type_error("$dateToParts", "a boolean 'iso8601'", &other)),
    };
    let c = Civil::of(ms, offset);
    let mut out = Map::new();
    let fields: [(&str, i64); 3] = if iso {
        [
            ("isoWeekYear", c.iso_year),
            ("isoWeek", c.iso_week),
            ("isoDayOfWeek", c.iso_day_of_week()),
        ]
    } else {
        [("year", c.year), ("month", c.month), ("day", c.day)]
    };
    for (name, v) in fields.into_iter().chain([
        ("hour", c.hour),
        ("minute", c.minute),
        ("second", c.second),
        ("millisecond", c.millisecond),
    ]) {
        out.insert(name.into(), Value::from(v));
    }
    Ok(Some(Value::Object(out)))
}

/// Parsed fields of a date string.
#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
    offset: Option<i64>,
}

impl Parsed {
    fn ms(&self, default_offset: i64) -> Option<i64> {
        let year = self.year?;
        if !(1..=12).contains(&self.month)
            || !(1..=31).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        let days = days_from_civil(year, self.month, self.day);
        // Reject day numbers past the end of the month (2021-02-30).
        if civil_from_days(days).1 != self.month {
            return None;
        }
        let offset = self.offset.unwrap_or(default_offset);
        Some(
            days * DAY_MS
                + self.hour * 3_600_000
                + self.minute * 60_000
                + self.second * 1000
                + self.millisecond
                - offset * 60_000,
        )
    }
}

/// A cursor over the bytes of a date string.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.at;
        while self.at < self.text.len()
            && self.at - start < max
            && self.text[self.at].is_ascii_digit()
        {
            self.at += 1;
        }
        if self.at - start < min {
            return None;
        }
        std::str::from_utf8(&self.text[start..self.at])
            .ok()?
            .parse()
            .ok()
    }
    fn eat(&mut self, byte: u8) -> bool {
        if self.text.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.at == self.text.len()
    }
    fn offset(&mut self) -> Option<i64> {
        if self.eat(b'Z') {
            return Some(0);
        }
        let rest = std::str::from_utf8(&self.text[self.at..]).ok()?;
        let len = rest
            .char_indices()
            .skip(1)
            .find(|(_, c)| !c.is_ascii_digit() && *c != ':')
            .map_or(rest.len(), |(i, _)| i);
        let offset = parse_offset(&rest[..len])?;
        self.at += len;
        Some(offset)
    }
}

/// ISO 8601: `YYYY-MM-DD`, then optionally `T` or space, `HH:MM[:SS[.fff]]`, then `Z` or an offset.
fn parse_iso_parts(text: &str) -> Option<Parsed> {
    let mut r = Reader {
        text: text.as_bytes(),
        at: 0,
    };
    let mut p = Parsed {
        year: Some(r.digits(4, 4)?),
        ..Parsed::default()
    };
    r.eat(b'-').then_some(())?;
    p.month = r.digits(2, 2)?;
    r.eat(b'-').then_some(())?;
    p.day = r.digits(2, 2)?;
    if r.done() {
        return Some(p);
    }
    (r.eat(b'T') || r.eat(b' ')).then_some(())?;
    p.hour = r.digits(2, 2)?;
    r.eat(b':').then_some(())?;
    p.minute = r.digits(2, 2)?;
    if r.eat(b':') {
        p.second = r.digits(2, 2)?;
        if r.eat(b'.') {
            let start = r.at;
            let frac = r.digits(1, 9)?;
            let width = (r.at - start) as u32;
            p.millisecond = if width >= 3 {
                frac / 10i64.pow(width - 3)
            } else {
                frac * 10i64.pow(3 - width)
            };
        }
    }
    if !r.done() {
        p.offset = Some(r.offset()?);
    }
    r.done().then_some(p)
}

/// Epoch ms of an ISO 8601 date string (UTC unless it carries an offset).
pub(super) fn parse_iso(text: &str) -> Option<i64> {
    parse_iso_parts(text)?.ms(0)
}

fn parse_with_format(text: &str, format: &str) -> DbResult<Option<Parsed>> {
    let mut r = Reader {
        text: text.as_bytes(),
        at: 0,
    };
    let mut p = Parsed {
        month: 1,
        day: 1,
        ..Parsed::default()
    };
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                if !r.eat(b) {
                    return Ok(None);
                }
            }
            continue;
        }
        let spec = chars.next().unwrap_or('%');
        let ok = match spec {
            'Y' => r.digits(4, 4).map(|v| p.year = Some(v)),
            'm' => r.digits(1, 2).map(|v| p.month = v),
            'd' => r.digits(1, 2).map(|v| p.day = v),
            'H' => r.digits(1, 2).map(|v| p.hour = v),
            'M' => r.digits(1, 2).map(|v| p.minute = v),
            'S' => r.digits(1, 2).map(|v| p.second = v),
            'L' => r.digits(1, 3).map(|v| p.millisecond = v),
            'z' => r.offset().map(|v| p.offset = Some(v)),
            'Z' => {
                let negative = r.eat(b'-');
                if !negative {
                    r.eat(b'+');
                }
                r.digits(1, 4)
                    .map(|v| p.offset = Some(if negative { -v } else { v }))
            }
            '%' => r.eat(b'%').then_some(()),
            other => {
                return Err(DbError::invalid_param(format!(
                    "$dateFromString: format character %{other} is not supported"
                )))
            }
        };
        if ok.is_none() {
            return Ok(None);
        }
    }
    Ok(r.done().then_some(p))
}

pub(super) fn from_string(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let on_error = |err: DbError| match nth(args, 3) {
        Some(e) => e.eval_in(scope),
        None => Err(err),
    };
    let text = match arg(args, 0, scope)? {
        None | Some(Value::Null) => {
            return match nth(args, 4) {
                Some(e) => e.eval_in(scope),
                None => Ok(Some(Value::Null)),
            }
        }
        Some(Value::String(s)) => s,
        other => {
            return on_error(type_error(
                "$dateFromString",
                "a string 'dateString'",
                &other,
            ))
        }
    };
    let offset = match timezone_arg(args, 2, scope)? {
        None => return Ok(Some(Value::Null)),
        Some(o) => o,
    };
    let parsed = match arg(args, 1, scope)? {
        None if nth(args, 1).is_none() => parse_iso_parts(&text),
        None | Some(Value::Null) => return Ok(Some(Value::Null)),
        Some(Value::String(format)) => parse_with_format(&text, &format)?,
        other => return Err(type_error("$dateFromString", "a string format", &other)),
    };
    let failure = || DbError::invalid_param(format!("Error parsing date string '{text}'"));
    let Some(parsed) = parsed else {
        return on_error(failure());
    };
    if parsed.offset.is_some() && nth(args, 2).is_some() {
        return on_error(DbError::invalid_param(
            "$dateFromString: the date string carries a time zone and a timezone argument was also given",
        ));
    }
    match parsed.ms(offset) {
        Some(ms) => Ok(Some(ejson::date_value(ms))),
        None => on_error(failure()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_iso_weeks() {
        for days in [-800_000, -1, 0, 1, 11_016, 18_262, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2021-01-01 is a Friday in ISO week 53 of 2020.
        let c = Civil::of(days_from_civil(2021, 1, 1) * DAY_MS, 0);
        assert_eq!(
            (c.weekday, c.iso_year, c.iso_week, c.week()),
            (5, 2020, 53, 0)
        );
        let c = Civil::of(days_from_civil(2023, 1, 1) * DAY_MS, 480);
        assert_eq!((c.hour, c.weekday, c.week()), (8, 0, 1));
        assert_eq!(iso_string(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            parse_iso("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_iso("2023-11-15T06:13:20.123+08:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_iso("2021-02-30"), None);
        assert_eq!(parse_timezone("+05:30").unwrap(), 330);
        assert!(parse_timezone("America/New_York").is_err());
    }
}
