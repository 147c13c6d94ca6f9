use super::*;
use serde_json::json;

fn eval(e: Value, doc: Value) -> DbResult<Option<Value>> {
    Expr::compile(&e)?.eval(&doc)
}

#[test]
fn compares_fields() {
    let doc = json!({"spent": 150, "budget": 100, "a": {"b": [1, 2]}});
    assert_eq!(
        eval(json!({"$gt": ["$spent", "$budget"]}), doc.clone()).unwrap(),
        Some(json!(true))
    );
    assert_eq!(
        eval(json!({"$lt": ["$spent", "$budget"]}), doc.clone()).unwrap(),
        Some(json!(false))
    );
    assert_eq!(
        eval(json!({"$size": "$a.b"}), doc.clone()).unwrap(),
        Some(json!(2))
    );
    assert_eq!(
        eval(json!({"$eq": ["$missing", null]}), doc.clone()).unwrap(),
        Some(json!(false))
    );
    assert_eq!(
        eval(json!({"$ifNull": ["$missing", "dflt"]}), doc).unwrap(),
        Some(json!("dflt"))
    );
}

#[test]
fn arithmetic() {
    let doc = json!({"a": 2, "b": 0.5, "d": {"$date": 1000}});
    assert_eq!(
        eval(json!({"$add": ["$a", 3]}), doc.clone()).unwrap(),
        Some(json!(5))
    );
    assert_eq!(
        eval(json!({"$multiply": ["$a", "$b"]}), doc.clone()).unwrap(),
        Some(json!(1.0))
    );
    assert_eq!(
        eval(json!({"$subtract": ["$a", 5]}), doc.clone()).unwrap(),
        Some(json!(-3))
    );
    assert_eq!(
        eval(json!({"$divide": ["$a", 4]}), doc.clone()).unwrap(),
        Some(json!(0.5))
    );
    assert_eq!(
        eval(json!({"$add": ["$d", 500]}), doc.clone()).unwrap(),
        Some(json!({"$date": 1500}))
    );
    assert_eq!(
        eval(json!({"$subtract": ["$d", {"$date": 400}]}), doc.clone()).unwrap(),
        Some(json!(600))
    );
    assert_eq!(
        eval(json!({"$add": ["$a", "$nope"]}), doc.clone()).unwrap(),
        Some(json!(null))
    );
    assert!(eval(json!({"$divide": ["$a", 0]}), doc.clone()).is_err());
    assert!(eval(json!({"$add": ["$a", "x"]}), doc.clone()).is_err());
    assert!(eval(json!({"$size": "$a"}), doc).is_err());
    assert_eq!(
        eval(json!({"$add": [i64::MAX, 1]}), json!({})).unwrap(),
        Some(json!(9.223372036854776e18))
    );
}

#[test]
fn logic_and_errors() {
    let doc = json!({"x": 0, "y": "s"});
    assert_eq!(
        eval(json!({"$and": ["$y", {"$not": "$x"}]}), doc.clone()).unwrap(),
        Some(json!(true))
    );
    assert_eq!(
        eval(json!({"$or": ["$x", "$nope"]}), doc).unwrap(),
        Some(json!(false))
    );
    assert_eq!(
        Expr::compile(&json!({"$regexMatch": {}})).unwrap_err().code,
        "DATABASE_INVALID_OPERRATOR"
    );
    assert_eq!(
        Expr::compile(&json!({"$gt": [1]})).unwrap_err().code,
        "INVALID_PARAM"
    );
    assert!(Expr::compile(&json!("$$Upper")).is_err());
}

#[test]
fn table_covers_the_sdk_operator_list() {
    // The 106 operators of db.command.aggregate (api-surface.md Appendix B); `neq` is `$ne`, `literal` is
    // compiled inline, `addToSet`/`push` are group accumulators (their expression form is refused).
    let sdk = "abs add addToSet allElementsTrue and anyElementTrue arrayElemAt arrayToObject avg ceil cmp concat \
        concatArrays cond convert dateFromParts dateToParts dateFromString dateToString dayOfMonth dayOfWeek \
        dayOfYear divide eq exp filter first floor gt gte hour ifNull in indexOfArray indexOfBytes indexOfCP \
        isArray isoDayOfWeek isoWeek isoWeekYear last let literal ln log log10 lt lte ltrim map max mergeObjects \
        meta min millisecond minute mod month multiply neq not objectToArray or pow push range reduce \
        reverseArray rtrim second setDifference setEquals setIntersection setIsSubset setUnion size slice split \
        sqrt stdDevPop stdDevSamp strcasecmp strLenBytes strLenCP substr substrBytes substrCP subtract sum \
        switch toBool toDate toDecimal toDouble toInt toLong toObjectId toString toLower toUpper trim trunc \
        type week year zip";
    let names: Vec<&str> = sdk.split_whitespace().collect();
    assert_eq!(names.len(), 106);
    for name in names {
        let op = if name == "neq" {
            "$ne".to_owned()
        } else {
            format!("${name}")
        };
        assert!(
            op == "$literal" || OPERATORS.iter().any(|spec| spec.name == op),
            "{op} is missing from the table"
        );
    }
}

#[test]
fn strings_arrays_sets_and_variables() {
    let doc = json!({"s": "  Hello, 世界 ", "a": [3, 1, 2, 1], "o": {"x": 1, "y": [1, 2]}});
    let cases = [
        (json!({"$trim": {"input": "$s"}}), json!("Hello, 世界")),
        (json!({"$strLenCP": {"$trim": {"input": "$s"}}}), json!(9)),
        (json!({"$strLenBytes": "世"}), json!(3)),
        (json!({"$substrCP": ["$s", 9, 2]}), json!("世界")),
        (json!({"$indexOfCP": ["$s", "界"]}), json!(10)),
        (
            json!({"$split": ["a,b,,c", ","]}),
            json!(["a", "b", "", "c"]),
        ),
        (json!({"$concat": ["a", {"$toUpper": "b"}]}), json!("aB")),
        (json!({"$strcasecmp": ["ABC", "abd"]}), json!(-1)),
        (
            json!({"$filter": {"input": "$a", "as": "n", "cond": {"$gt": ["$$n", 1]}}}),
            json!([3, 2]),
        ),
        (
            json!({"$map": {"input": "$a", "in": {"$multiply": ["$$this", 10]}}}),
            json!([30, 10, 20, 10]),
        ),
        (
            json!({"$reduce": {"input": "$a", "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}}),
            json!(7),
        ),
        (
            json!({"$let": {"vars": {"t": {"$sum": "$a"}}, "in": {"$multiply": ["$$t", 2]}}}),
            json!(14),
        ),
        (json!({"$setUnion": ["$a", [5]]}), json!([3, 1, 2, 5])),
        (json!({"$setIsSubset": [[1], "$a"]}), json!(true)),
        (json!({"$slice": ["$a", -2]}), json!([2, 1])),
        (json!({"$slice": ["$a", 1, 2]}), json!([1, 2])),
        (json!({"$arrayElemAt": ["$a", -1]}), json!(1)),
        (
            json!({"$zip": {"inputs": [[1, 2], ["a"]], "useLongestLength": true}}),
            json!([[1, "a"], [2, null]]),
        ),
        (
            json!({"$objectToArray": "$o"}),
            json!([{"k": "x", "v": 1}, {"k": "y", "v": [1, 2]}]),
        ),
        (json!({"$arrayToObject": [[["k", 1]]]}), json!({"k": 1})),
        (json!({"$range": [0, 10, 4]}), json!([0, 4, 8])),
        (json!({"$max": "$a"}), json!(3)),
        (json!({"$stdDevPop": [1, 3]}), json!(1.0)),
        (
            json!({"$switch": {"branches": [{"case": false, "then": 1}], "default": 2}}),
            json!(2),
        ),
        (
            json!({"$cond": {"if": "$o", "then": "y", "else": "n"}}),
            json!("y"),
        ),
        (json!({"$type": "$o.x"}), json!("int")),
        (json!({"$toInt": "42"}), json!(42)),
        (
            json!({"$convert": {"input": "x", "to": "int", "onError": -1}}),
            json!(-1),
        ),
        (
            json!({"$mergeObjects": ["$o", {"x": 2}]}),
            json!({"x": 2, "y": [1, 2]}),
        ),
        (json!({"$pow": [2, 10]}), json!(1024)),
        (json!({"$mod": [-7, 3]}), json!(-1)),
        (json!({"$trunc": [1.267, 2]}), json!(1.26)),
    ];
    for (expr, want) in cases {
        assert_eq!(
            eval(expr.clone(), doc.clone()).unwrap(),
            Some(want),
            "{expr}"
        );
    }
    assert!(eval(json!({"$switch": {"branches": []}}), doc.clone()).is_err());
    assert!(eval(json!("$$undefinedvar"), doc).is_err());
}

#[test]
fn dates() {
    let doc = json!({"d": {"$date": 1_700_000_000_123i64}});
    let cases = [
        (json!({"$year": "$d"}), json!(2023)),
        (
            json!({"$hour": {"date": "$d", "timezone": "Asia/Shanghai"}}),
            json!(6),
        ),
        (json!({"$dayOfWeek": "$d"}), json!(3)),
        (json!({"$isoWeek": "$d"}), json!(46)),
        (
            json!({"$dateToString": {"date": "$d", "format": "%Y/%m/%d %H:%M:%S.%L %z", "timezone": "+08:00"}}),
            json!("2023/11/15 06:13:20.123 +0800"),
        ),
        (
            json!({"$dateFromString": {"dateString": "2023-11-14T22:13:20.123Z"}}),
            json!({"$date": 1_700_000_000_123i64}),
        ),
        (
            json!({"$dateFromParts": {"year": 2023, "month": 14, "day": 1}}),
            json!({"$date": 1_706_745_600_000i64}),
        ),
        (
            json!({"$dateToParts": {"date": "$d"}}),
            json!({"year": 2023, "month": 11, "day": 14, "hour": 22, "minute": 13, "second": 20, "millisecond": 123}),
        ),
        (
            json!({"$toString": "$d"}),
            json!("2023-11-14T22:13:20.123Z"),
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(
            eval(expr.clone(), doc.clone()).unwrap(),
            Some(want),
            "{expr}"
        );
    }
}

#[test]
fn runaway_values_fail_instead_of_exhausting_memory() {
    // Each step doubles the value: without a limit, 64 steps need 2^64 bytes.
    let doubling_string = json!({"$reduce": {"input": {"$range": [0, 64]}, "initialValue": "ab",
        "in": {"$concat": ["$$value", "$$value"]}}});
    let err = eval(doubling_string, json!({})).unwrap_err();
    assert_eq!(err.code, "INVALID_PARAM");
    let doubling_array = json!({"$reduce": {"input": {"$range": [0, 64]}, "initialValue": [1],
        "in": {"$concatArrays": ["$$value", "$$value"]}}});
    assert!(eval(doubling_array, json!({})).is_err());
    assert!(eval(json!({"$range": [0, 2_000_000_000]}), json!({})).is_err());
}

#[test]
fn extreme_operands_are_errors_not_panics() {
    let doc = json!({"d": {"$date": i64::MAX}, "big": i64::MAX});
    for expr in [
        json!({"$year": {"date": "$d", "timezone": "+08:00"}}),
        json!({"$dateToString": {"date": "$d"}}),
        json!({"$dateFromParts": {"year": 2020, "month": i64::MAX}}),
        json!({"$substrBytes": ["abc", 1, "$big"]}),
        json!({"$add": ["$big", "$big"]}),
        json!({"$multiply": ["$big", "$big"]}),
        json!({"$abs": i64::MIN}),
        json!({"$mod": [i64::MIN, -1]}),
        json!({"$pow": [2, 1000]}),
        json!({"$toInt": 1e300}),
        json!({"$range": [0, 10, 0]}),
        json!({"$indexOfBytes": ["abc", "", 5, 2]}),
        json!({"$slice": [[1, 2], i64::MIN]}),
        json!({"$arrayElemAt": [[1], i64::MIN]}),
        json!({"$trunc": [1.5, 1000]}),
    ] {
        let _ = eval(expr, doc.clone());
    }
}

#[test]
fn every_operator_survives_hostile_operands() {
    // Deterministic pseudo-random operands for every table entry: any answer or error is fine, a panic
    // (overflow, slicing, unwrap) is not.
    let pool = [
        json!(null),
        json!(0),
        json!(-1),
        json!(1),
        json!(2.5),
        json!(-0.5),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(-1e308),
        json!(""),
        json!("abc"),
        json!("世界"),
        json!("2021-02-03T04:05:06Z"),
        json!("%Y%%"),
        json!([]),
        json!([1, 2, 3]),
        json!([[1, 2], ["k", 1]]),
        json!([{"k": "a", "v": 1}]),
        json!({}),
        json!({"a": 1}),
        json!({"$date": i64::MAX}),
        json!({"$date": i64::MIN}),
        json!({"$date": 0}),
        json!(true),
        json!("$a"),
        json!("$arr"),
        json!("$$this"),
    ];
    let doc = json!({"a": -3, "arr": [1, "x", null, [2]], "s": "héllo"});
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for spec in OPERATORS {
        for _ in 0..300 {
            let operand = match spec.shape {
                Shape::Named(fields, _) | Shape::ListOrNamed(fields) if next(4) > 0 => {
                    let mut map = serde_json::Map::new();
                    for field in fields {
                        if next(3) > 0 {
                            map.insert((*field).to_owned(), pool[next(pool.len())].clone());
                        }
                    }
                    if let Some(Value::String(_)) = map.get("as") {
                    } else {
                        map.remove("as");
                    }
                    Value::Object(map)
                }
                Shape::DatePart if next(2) == 0 => {
                    json!({"date": pool[next(pool.len())].clone(), "timezone": pool[next(pool.len())].clone()})
                }
                _ => Value::Array(
                    (0..next(5))
                        .map(|_| pool[next(pool.len())].clone())
                        .collect(),
                ),
            };
            let expr = json!({ spec.name: operand });
            if let Ok(compiled) = Expr::compile(&expr) {
                let _ = compiled.eval_in(&Scope::new(&doc, &[("x".to_owned(), json!(1))]));
            }
        }
    }
}
