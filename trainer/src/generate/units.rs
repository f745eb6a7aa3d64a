//! Units by category with the spellings people type and natural values, for
//! unit_converter examples ("26.2 miles to km", "350°F in celsius", "$50 in euros").

use super::rng::Rng;

/// A unit and how people write it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    /// Written after "1"/"a": "mile", "cup".
    pub singular: &'static [&'static str],
    /// Written after other numbers: "miles", "cups".
    pub plural: &'static [&'static str],
    /// Abbreviations usable with any number: "mi", "km", "°F".
    pub short: &'static [&'static str],
    /// Abbreviations that may be glued to the number: "5km", "25°C".
    pub glued: &'static [&'static str],
    /// "a" or "an" before the singular.
    pub article: &'static str,
    /// Currency symbol written before the number ("$50").
    pub symbol: &'static str,
}

const fn unit(
    singular: &'static [&'static str],
    plural: &'static [&'static str],
    short: &'static [&'static str],
    glued: &'static [&'static str],
    article: &'static str,
) -> Unit {
    Unit {
        singular,
        plural,
        short,
        glued,
        article,
        symbol: "",
    }
}

const fn money(
    singular: &'static [&'static str],
    plural: &'static [&'static str],
    short: &'static [&'static str],
    symbol: &'static str,
) -> Unit {
    Unit {
        singular,
        plural,
        short,
        glued: &[],
        article: "a",
        symbol,
    }
}

/// A category: its units, natural values, and a weight for how often people ask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Category {
    pub name: &'static str,
    pub units: &'static [Unit],
    /// Typical values; the generator also draws nearby random ones.
    pub values: &'static [f64],
    pub weight: f64,
}

pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "length",
        units: &[
            unit(
                &["kilometer", "kilometre"],
                &["kilometers", "kilometres"],
                &["km"],
                &["km"],
                "a",
            ),
            unit(&["mile"], &["miles"], &["mi"], &[], "a"),
            unit(
                &["meter", "metre"],
                &["meters", "metres"],
                &["m"],
                &["m"],
                "a",
            ),
            unit(&["foot"], &["feet"], &["ft"], &["ft"], "a"),
            unit(&["inch"], &["inches"], &[], &[], "an"),
            unit(
                &["centimeter", "centimetre"],
                &["centimeters", "centimetres"],
                &["cm"],
                &["cm"],
                "a",
            ),
            unit(&["millimeter"], &["millimeters"], &["mm"], &["mm"], "a"),
            unit(&["yard"], &["yards"], &["yd", "yds"], &[], "a"),
            unit(&["nautical mile"], &["nautical miles"], &[], &[], "a"),
        ],
        values: &[
            1.0, 2.0, 3.0, 5.0, 5.5, 6.0, 10.0, 12.0, 13.1, 15.0, 21.1, 26.2, 42.0, 50.0, 100.0,
            180.0, 250.0, 400.0, 1500.0,
        ],
        weight: 3.0,
    },
    Category {
        name: "temperature",
        units: &[
            unit(
                &["degree celsius"],
                &["degrees celsius", "celsius", "degrees c"],
                &["°C", "C"],
                &["°C", "°c", "C"],
                "a",
            ),
            unit(
                &["degree fahrenheit"],
                &["degrees fahrenheit", "fahrenheit", "degrees f"],
                &["°F", "F"],
                &["°F", "°f", "F"],
                "a",
            ),
            unit(&["kelvin"], &["kelvin"], &["K"], &["K"], "a"),
        ],
        values: &[
            -40.0, -10.0, 0.0, 4.0, 15.0, 18.0, 20.0, 21.0, 25.0, 30.0, 37.0, 38.5, 40.0, 72.0,
            98.6, 100.0, 180.0, 200.0, 220.0, 350.0, 425.0,
        ],
        weight: 2.5,
    },
    Category {
        name: "mass",
        units: &[
            unit(
                &["kilogram", "kilo"],
                &["kilograms", "kilos"],
                &["kg"],
                &["kg"],
                "a",
            ),
            unit(&["pound"], &["pounds"], &["lbs", "lb"], &["lbs", "lb"], "a"),
            unit(&["ounce"], &["ounces"], &["oz"], &["oz"], "an"),
            unit(&["gram"], &["grams"], &["g"], &["g"], "a"),
            unit(&["stone"], &["stone"], &["st"], &[], "a"),
            unit(&["ton"], &["tons"], &[], &[], "a"),
            unit(
                &["metric ton", "tonne"],
                &["metric tons", "tonnes"],
                &[],
                &[],
                "a",
            ),
        ],
        values: &[
            1.0, 2.0, 2.5, 5.0, 8.0, 12.0, 16.0, 50.0, 68.0, 75.0, 100.0, 150.0, 185.0, 250.0,
            500.0,
        ],
        weight: 2.0,
    },
    Category {
        name: "cooking",
        units: &[
            unit(&["cup"], &["cups"], &[], &[], "a"),
            unit(&["tablespoon"], &["tablespoons"], &["tbsp"], &["tbsp"], "a"),
            unit(&["teaspoon"], &["teaspoons"], &["tsp"], &["tsp"], "a"),
            unit(
                &["milliliter", "millilitre"],
                &["milliliters", "millilitres"],
                &["ml"],
                &["ml"],
                "a",
            ),
            unit(
                &["liter", "litre"],
                &["liters", "litres"],
                &["l", "L"],
                &["L"],
                "a",
            ),
            unit(&["gallon"], &["gallons"], &["gal"], &[], "a"),
            unit(&["quart"], &["quarts"], &["qt"], &[], "a"),
            unit(&["pint"], &["pints"], &["pt"], &[], "a"),
            unit(
                &["fluid ounce"],
                &["fluid ounces"],
                &["fl oz"],
                &["fl oz"],
                "a",
            ),
        ],
        values: &[
            0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 12.0, 16.0, 250.0, 500.0, 750.0,
        ],
        weight: 2.0,
    },
    Category {
        name: "speed",
        units: &[
            unit(
                &["mile per hour"],
                &["miles per hour"],
                &["mph"],
                &["mph"],
                "a",
            ),
            unit(
                &["kilometer per hour"],
                &["kilometers per hour"],
                &["km/h", "kph", "kmh"],
                &["km/h", "kph"],
                "a",
            ),
            unit(
                &["meter per second"],
                &["meters per second"],
                &["m/s"],
                &["m/s"],
                "a",
            ),
            unit(&["knot"], &["knots"], &["kn"], &[], "a"),
        ],
        values: &[
            10.0, 25.0, 30.0, 50.0, 55.0, 60.0, 65.0, 70.0, 80.0, 100.0, 120.0, 130.0, 200.0, 300.0,
        ],
        weight: 1.2,
    },
    Category {
        name: "data",
        units: &[
            unit(
                &["megabyte"],
                &["megabytes"],
                &["MB", "mb"],
                &["MB", "mb"],
                "a",
            ),
            unit(
                &["gigabyte"],
                &["gigabytes"],
                &["GB", "gb", "gigs"],
                &["GB", "gb"],
                "a",
            ),
            unit(&["terabyte"], &["terabytes"], &["TB", "tb"], &["TB"], "a"),
            unit(&["kilobyte"], &["kilobytes"], &["KB", "kb"], &["KB"], "a"),
            unit(&["byte"], &["bytes"], &[], &[], "a"),
            unit(&["bit"], &["bits"], &[], &[], "a"),
        ],
        values: &[
            1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 128.0, 256.0, 512.0, 700.0, 1024.0, 1500.0, 4096.0,
        ],
        weight: 1.0,
    },
    Category {
        name: "area",
        units: &[
            unit(
                &["square foot"],
                &["square feet", "sq ft"],
                &["sq ft", "sqft", "ft²"],
                &["sqft"],
                "a",
            ),
            unit(
                &["square meter", "square metre"],
                &["square meters", "square metres", "sq m"],
                &["m²", "m2", "sqm"],
                &["m²", "sqm"],
                "a",
            ),
            unit(&["acre"], &["acres"], &[], &[], "an"),
            unit(&["hectare"], &["hectares"], &["ha"], &[], "a"),
            unit(
                &["square kilometer"],
                &["square kilometers", "sq km"],
                &["km²"],
                &["km²"],
                "a",
            ),
            unit(
                &["square mile"],
                &["square miles", "sq miles"],
                &[],
                &[],
                "a",
            ),
        ],
        values: &[
            1.0, 2.0, 5.0, 10.0, 40.0, 65.0, 80.0, 120.0, 450.0, 800.0, 1200.0, 2500.0,
        ],
        weight: 1.0,
    },
    Category {
        name: "time",
        units: &[
            unit(&["hour"], &["hours"], &["hrs", "h"], &["h", "hrs"], "an"),
            unit(
                &["minute"],
                &["minutes"],
                &["mins", "min"],
                &["min", "mins"],
                "a",
            ),
            unit(&["second"], &["seconds"], &["secs", "s"], &["s"], "a"),
            unit(&["day"], &["days"], &[], &[], "a"),
            unit(&["week"], &["weeks"], &[], &[], "a"),
            unit(&["year"], &["years"], &[], &[], "a"),
            unit(&["millisecond"], &["milliseconds"], &["ms"], &["ms"], "a"),
        ],
        values: &[
            1.0, 1.5, 2.0, 3.0, 7.0, 10.0, 24.0, 36.0, 45.0, 90.0, 100.0, 365.0, 1000.0, 10000.0,
        ],
        weight: 1.0,
    },
    Category {
        name: "angle",
        units: &[
            unit(&["degree"], &["degrees"], &["deg", "°"], &["°"], "a"),
            unit(&["radian"], &["radians"], &["rad"], &["rad"], "a"),
        ],
        values: &[1.0, 30.0, 45.0, 60.0, 90.0, 180.0, 270.0, 360.0, 3.14],
        weight: 0.4,
    },
    Category {
        name: "currency",
        units: &[
            money(
                &["dollar", "us dollar"],
                &["dollars", "us dollars", "bucks"],
                &["USD", "usd"],
                "$",
            ),
            money(&["euro"], &["euros"], &["EUR", "eur"], "€"),
            money(
                &["british pound", "pound"],
                &["pounds", "british pounds", "pounds sterling"],
                &["GBP", "gbp"],
                "£",
            ),
            money(&["yen"], &["yen", "japanese yen"], &["JPY", "jpy"], "¥"),
            money(
                &["canadian dollar"],
                &["canadian dollars"],
                &["CAD", "cad"],
                "",
            ),
            money(
                &["australian dollar"],
                &["australian dollars", "aussie dollars"],
                &["AUD", "aud"],
                "",
            ),
            money(&["swiss franc"], &["swiss francs"], &["CHF", "chf"], ""),
            money(
                &["rupee"],
                &["rupees", "indian rupees"],
                &["INR", "inr"],
                "",
            ),
            money(&["peso"], &["pesos", "mexican pesos"], &["MXN", "mxn"], ""),
            money(
                &["yuan"],
                &["yuan", "chinese yuan"],
                &["CNY", "cny", "RMB"],
                "",
            ),
            money(&["won"], &["korean won"], &["KRW", "krw"], ""),
            money(
                &["real"],
                &["brazilian reais", "reais"],
                &["BRL", "brl"],
                "",
            ),
            money(
                &["krona"],
                &["swedish kronor", "kronor"],
                &["SEK", "sek"],
                "",
            ),
            money(&["baht"], &["thai baht", "baht"], &["THB", "thb"], ""),
        ],
        values: &[
            1.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 250.0, 500.0, 1000.0,
            1200.0, 2500.0, 10000.0,
        ],
        weight: 3.5,
    },
];

/// A chosen conversion, before it is written into a template.
#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    pub category: &'static str,
    pub value: f64,
    pub from: Unit,
    pub to: Unit,
}

impl Conversion {
    /// Picks a category by weight, two different units and a natural value.
    pub(crate) fn pick(rng: &mut Rng) -> Self {
        let weights: Vec<f64> = CATEGORIES.iter().map(|c| c.weight).collect();
        let cat = &CATEGORIES[rng.weighted(&weights)];
        let from_i = rng.below(cat.units.len());
        let mut to_i = rng.below(cat.units.len());
        if to_i == from_i {
            to_i = (from_i + 1 + rng.below(cat.units.len() - 1)) % cat.units.len();
        }
        let base = cat
            .values
            .get(rng.below(cat.values.len()))
            .copied()
            .unwrap_or(1.0);
        let value = if rng.chance(0.35) && base > 3.0 {
            let jitter = rng.range(-((base * 0.4) as i64), (base * 0.4) as i64) as f64;
            (base + jitter).round().max(2.0)
        } else {
            base
        };
        Self {
            category: cat.name,
            value,
            from: cat.units[from_i],
            to: cat.units[to_i],
        }
    }
}

/// The number as people type it: "26.2", "1500" or "1,500", "0.5".
pub(crate) fn number_text(value: f64, rng: &mut Rng) -> String {
    if value.fract() == 0.0 {
        let n = value as i64;
        if n.abs() >= 1000 && rng.chance(0.4) {
            with_commas(n)
        } else {
            n.to_string()
        }
    } else {
        let s = format!("{value}");
        if value.abs() < 1.0 && rng.chance(0.3) {
            s.trim_start_matches('0').to_string()
        } else {
            s
        }
    }
}

/// Formats an integer with thousands separators.
pub(crate) fn with_commas(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The JSON number for a value: an integer when whole.
pub(crate) fn json_number(value: f64) -> serde_json::Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::from(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_naturally() {
        let mut rng = Rng::new(2);
        assert_eq!(with_commas(1500), "1,500");
        assert_eq!(with_commas(-1234567), "-1,234,567");
        assert_eq!(number_text(26.2, &mut rng), "26.2");
        assert_eq!(json_number(5.0), serde_json::json!(5));
        assert_eq!(json_number(26.2), serde_json::json!(26.2));
    }

    #[test]
    fn conversions_use_two_units_of_one_category() {
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let c = Conversion::pick(&mut rng);
            assert_ne!(c.from.singular, c.to.singular);
            assert!(c.value.is_finite());
        }
    }
}
