//! Units by category with the spellings people type, the pairs people actually
//! convert and natural values for each unit ("26.2 miles to km", "350°F in
//! celsius", "$50 in euros"), plus contexts ("i weigh 80 kg", "the recipe
//! calls for 2 cups") that restrict units and values to what makes sense there.

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
    /// Currency symbol written before the number ("$50"), or "".
    pub symbol: &'static str,
    /// Values people convert from this unit.
    pub values: &'static [f64],
}

const fn unit(
    singular: &'static [&'static str],
    plural: &'static [&'static str],
    short: &'static [&'static str],
    glued: &'static [&'static str],
    article: &'static str,
    values: &'static [f64],
) -> Unit {
    Unit {
        singular,
        plural,
        short,
        glued,
        article,
        symbol: "",
        values,
    }
}

const fn money(
    singular: &'static [&'static str],
    plural: &'static [&'static str],
    short: &'static [&'static str],
    symbol: &'static str,
    values: &'static [f64],
) -> Unit {
    Unit {
        singular,
        plural,
        short,
        glued: &[],
        article: "a",
        symbol,
        values,
    }
}

/// A category: its units, the `(from, to)` index pairs people convert, and a
/// weight for how often people ask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Category {
    pub name: &'static str,
    pub units: &'static [Unit],
    pub pairs: &'static [(usize, usize)],
    /// Pairs that read well as "how many <to> in a <from>" (big to small).
    pub a_pairs: &'static [(usize, usize)],
    pub weight: f64,
}

const MONEY_VALUES: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 25.0, 40.0, 50.0, 75.0, 100.0, 120.0, 150.0, 200.0, 250.0, 500.0, 750.0,
    1000.0, 1200.0, 2500.0, 5000.0,
];

pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "length",
        units: &[
            unit(
                &["kilometer", "kilometre"],
                &["kilometers", "kilometres"],
                &["km"],
                &["km", "k"],
                "a",
                &[
                    1.0, 3.0, 5.0, 10.0, 15.0, 21.1, 42.2, 50.0, 100.0, 250.0, 800.0,
                ],
            ),
            unit(
                &["mile"],
                &["miles"],
                &["mi"],
                &[],
                "a",
                &[
                    1.0, 2.0, 3.0, 5.0, 6.2, 10.0, 13.1, 26.2, 60.0, 100.0, 300.0, 1200.0,
                ],
            ),
            unit(
                &["meter", "metre"],
                &["meters", "metres"],
                &["m"],
                &["m"],
                "a",
                &[1.0, 2.0, 10.0, 100.0, 200.0, 400.0, 800.0, 1500.0, 5000.0],
            ),
            unit(
                &["foot"],
                &["feet"],
                &["ft"],
                &["ft"],
                "a",
                &[
                    1.0, 3.0, 5.0, 6.0, 10.0, 12.0, 30.0, 100.0, 500.0, 5280.0, 30000.0,
                ],
            ),
            unit(
                &["inch"],
                &["inches"],
                &[],
                &[],
                "an",
                &[1.0, 2.0, 6.0, 12.0, 15.6, 27.0, 32.0, 55.0, 65.0],
            ),
            unit(
                &["centimeter", "centimetre"],
                &["centimeters", "centimetres"],
                &["cm"],
                &["cm"],
                "a",
                &[
                    1.0, 2.5, 10.0, 30.0, 60.0, 100.0, 160.0, 172.0, 180.0, 190.0,
                ],
            ),
            unit(
                &["millimeter"],
                &["millimeters"],
                &["mm"],
                &["mm"],
                "a",
                &[1.0, 3.0, 5.0, 8.0, 10.0, 25.0, 300.0],
            ),
            unit(
                &["yard"],
                &["yards"],
                &["yd", "yds"],
                &[],
                "a",
                &[1.0, 10.0, 50.0, 100.0, 300.0],
            ),
            unit(
                &["nautical mile"],
                &["nautical miles"],
                &[],
                &[],
                "a",
                &[1.0, 10.0, 50.0, 200.0],
            ),
        ],
        pairs: &[
            (1, 0),
            (0, 1),
            (3, 2),
            (2, 3),
            (4, 5),
            (5, 4),
            (3, 5),
            (5, 3),
            (7, 2),
            (2, 7),
            (6, 4),
            (4, 6),
            (8, 0),
            (1, 3),
            (0, 2),
            (2, 1),
        ],
        a_pairs: &[
            (1, 3),
            (0, 2),
            (1, 0),
            (3, 4),
            (2, 5),
            (7, 3),
            (4, 5),
            (2, 3),
            (0, 1),
            (8, 0),
            (5, 6),
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
                &[
                    -20.0, -5.0, 0.0, 4.0, 12.0, 18.0, 21.0, 25.0, 30.0, 37.0, 40.0, 100.0, 180.0,
                    200.0,
                ],
            ),
            unit(
                &["degree fahrenheit"],
                &["degrees fahrenheit", "fahrenheit", "degrees f"],
                &["°F", "F"],
                &["°F", "°f", "F"],
                "a",
                &[
                    -10.0, 0.0, 32.0, 45.0, 60.0, 68.0, 72.0, 85.0, 98.6, 100.0, 212.0, 350.0,
                    400.0, 425.0,
                ],
            ),
            unit(
                &["kelvin"],
                &["kelvin"],
                &["K"],
                &["K"],
                "a",
                &[0.0, 273.15, 293.0, 300.0, 373.15, 5778.0],
            ),
        ],
        pairs: &[(0, 1), (1, 0), (0, 1), (1, 0), (0, 2), (2, 0), (1, 2)],
        a_pairs: &[],
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
                &[1.0, 2.0, 5.0, 10.0, 23.0, 50.0, 68.0, 75.0, 90.0, 100.0],
            ),
            unit(
                &["pound"],
                &["pounds"],
                &["lbs", "lb"],
                &["lbs", "lb"],
                "a",
                &[
                    1.0, 2.0, 5.0, 8.0, 10.0, 25.0, 50.0, 135.0, 150.0, 185.0, 220.0,
                ],
            ),
            unit(
                &["ounce"],
                &["ounces"],
                &["oz"],
                &["oz"],
                "an",
                &[1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0],
            ),
            unit(
                &["gram"],
                &["grams"],
                &["g"],
                &["g"],
                "a",
                &[
                    1.0, 5.0, 28.0, 50.0, 100.0, 125.0, 250.0, 454.0, 500.0, 750.0,
                ],
            ),
            unit(
                &["stone"],
                &["stone"],
                &["st"],
                &[],
                "a",
                &[1.0, 8.0, 9.5, 10.0, 11.0, 12.0, 13.0, 15.0],
            ),
            unit(
                &["ton"],
                &["tons"],
                &[],
                &[],
                "a",
                &[1.0, 2.0, 5.0, 10.0, 40.0],
            ),
            unit(
                &["metric ton", "tonne"],
                &["metric tons", "tonnes"],
                &[],
                &[],
                "a",
                &[1.0, 2.0, 3.5, 10.0, 40.0],
            ),
        ],
        pairs: &[
            (0, 1),
            (1, 0),
            (2, 3),
            (3, 2),
            (4, 0),
            (0, 4),
            (4, 1),
            (1, 4),
            (3, 2),
            (1, 3),
            (0, 2),
            (5, 6),
            (6, 5),
            (5, 1),
        ],
        a_pairs: &[
            (1, 2),
            (0, 1),
            (4, 1),
            (4, 0),
            (1, 3),
            (2, 3),
            (5, 1),
            (0, 3),
            (6, 0),
            (6, 5),
        ],
        weight: 2.0,
    },
    Category {
        name: "cooking",
        units: &[
            unit(
                &["cup"],
                &["cups"],
                &[],
                &[],
                "a",
                &[0.25, 0.33, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0],
            ),
            unit(
                &["tablespoon"],
                &["tablespoons"],
                &["tbsp"],
                &["tbsp"],
                "a",
                &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0],
            ),
            unit(
                &["teaspoon"],
                &["teaspoons"],
                &["tsp"],
                &["tsp"],
                "a",
                &[0.5, 1.0, 1.5, 2.0, 3.0, 6.0],
            ),
            unit(
                &["milliliter", "millilitre"],
                &["milliliters", "millilitres"],
                &["ml"],
                &["ml"],
                "a",
                &[
                    5.0, 15.0, 30.0, 100.0, 125.0, 200.0, 250.0, 330.0, 500.0, 750.0,
                ],
            ),
            unit(
                &["liter", "litre"],
                &["liters", "litres"],
                &["l", "L"],
                &["L"],
                "a",
                &[0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 20.0, 50.0],
            ),
            unit(
                &["gallon"],
                &["gallons"],
                &["gal"],
                &[],
                "a",
                &[0.5, 1.0, 2.0, 5.0, 10.0, 15.0],
            ),
            unit(
                &["quart"],
                &["quarts"],
                &["qt"],
                &[],
                "a",
                &[1.0, 2.0, 4.0, 6.0],
            ),
            unit(&["pint"], &["pints"], &["pt"], &[], "a", &[1.0, 2.0, 3.0]),
            unit(
                &["fluid ounce"],
                &["fluid ounces"],
                &["fl oz"],
                &["fl oz"],
                "a",
                &[1.0, 6.0, 8.0, 12.0, 16.0, 20.0, 64.0],
            ),
        ],
        pairs: &[
            (0, 3),
            (3, 0),
            (1, 2),
            (2, 1),
            (1, 3),
            (2, 3),
            (0, 1),
            (4, 5),
            (5, 4),
            (6, 4),
            (7, 3),
            (8, 3),
            (3, 8),
            (4, 0),
            (0, 8),
            (3, 1),
            (7, 0),
            (6, 0),
        ],
        a_pairs: &[
            (0, 1),
            (1, 2),
            (5, 6),
            (6, 0),
            (7, 0),
            (4, 0),
            (0, 3),
            (5, 4),
            (8, 3),
            (4, 3),
            (0, 8),
            (5, 0),
            (0, 2),
        ],
        weight: 2.0,
    },
    Category {
        name: "speed",
        units: &[
            unit(
                &["mile per hour"],
                &["miles per hour", "miles an hour"],
                &["mph"],
                &["mph"],
                "a",
                &[15.0, 25.0, 30.0, 45.0, 55.0, 65.0, 70.0, 80.0, 100.0, 200.0],
            ),
            unit(
                &["kilometer per hour"],
                &["kilometers per hour", "km per hour"],
                &["km/h", "kph", "kmh"],
                &["km/h", "kph"],
                "a",
                &[20.0, 30.0, 50.0, 80.0, 100.0, 110.0, 120.0, 130.0, 300.0],
            ),
            unit(
                &["meter per second"],
                &["meters per second"],
                &["m/s"],
                &["m/s"],
                "a",
                &[1.0, 3.0, 5.0, 10.0, 12.0, 20.0, 343.0],
            ),
            unit(
                &["knot"],
                &["knots"],
                &["kn"],
                &[],
                "a",
                &[5.0, 10.0, 15.0, 20.0, 35.0, 500.0],
            ),
        ],
        pairs: &[
            (0, 1),
            (1, 0),
            (0, 1),
            (1, 0),
            (2, 1),
            (1, 2),
            (3, 1),
            (3, 0),
            (2, 0),
        ],
        a_pairs: &[(3, 0), (2, 1), (0, 1), (3, 1)],
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
                &[1.0, 10.0, 25.0, 100.0, 250.0, 500.0, 700.0, 1500.0],
            ),
            unit(
                &["gigabyte"],
                &["gigabytes", "gigs"],
                &["GB", "gb"],
                &["GB", "gb"],
                "a",
                &[1.0, 2.0, 4.0, 8.0, 16.0, 50.0, 64.0, 128.0, 256.0, 512.0],
            ),
            unit(
                &["terabyte"],
                &["terabytes"],
                &["TB", "tb"],
                &["TB"],
                "a",
                &[1.0, 2.0, 4.0, 8.0, 20.0],
            ),
            unit(
                &["kilobyte"],
                &["kilobytes"],
                &["KB", "kb"],
                &["KB"],
                "a",
                &[1.0, 64.0, 256.0, 512.0, 1024.0, 4096.0],
            ),
            unit(
                &["byte"],
                &["bytes"],
                &[],
                &[],
                "a",
                &[1.0, 8.0, 1024.0, 1_000_000.0],
            ),
            unit(
                &["bit"],
                &["bits"],
                &[],
                &[],
                "a",
                &[8.0, 32.0, 64.0, 256.0],
            ),
        ],
        pairs: &[
            (1, 0),
            (0, 1),
            (2, 1),
            (1, 2),
            (3, 0),
            (0, 3),
            (4, 5),
            (5, 4),
            (4, 3),
            (2, 0),
        ],
        a_pairs: &[(1, 0), (2, 1), (0, 3), (4, 5), (3, 4), (2, 0)],
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
                &[100.0, 450.0, 650.0, 800.0, 1000.0, 1200.0, 1800.0, 2500.0],
            ),
            unit(
                &["square meter", "square metre"],
                &["square meters", "square metres", "sq m"],
                &["m²", "m2", "sqm"],
                &["m²", "sqm"],
                "a",
                &[10.0, 35.0, 50.0, 65.0, 80.0, 100.0, 150.0, 500.0],
            ),
            unit(
                &["acre"],
                &["acres"],
                &[],
                &[],
                "an",
                &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 40.0, 160.0],
            ),
            unit(
                &["hectare"],
                &["hectares"],
                &["ha"],
                &[],
                "a",
                &[0.5, 1.0, 2.0, 10.0, 50.0, 100.0],
            ),
            unit(
                &["square kilometer"],
                &["square kilometers", "sq km"],
                &["km²"],
                &["km²"],
                "a",
                &[1.0, 5.0, 100.0, 605.0, 2500.0],
            ),
            unit(
                &["square mile"],
                &["square miles", "sq miles"],
                &[],
                &[],
                "a",
                &[1.0, 10.0, 50.0, 300.0, 1000.0],
            ),
        ],
        pairs: &[
            (0, 1),
            (1, 0),
            (0, 1),
            (1, 0),
            (2, 3),
            (3, 2),
            (2, 0),
            (0, 2),
            (4, 5),
            (5, 4),
            (3, 1),
        ],
        a_pairs: &[(2, 0), (3, 2), (5, 2), (1, 0), (4, 3), (5, 4), (3, 1)],
        weight: 1.0,
    },
    Category {
        name: "time",
        units: &[
            unit(
                &["hour"],
                &["hours"],
                &["hrs", "h"],
                &["h", "hrs"],
                "an",
                &[1.0, 1.5, 2.0, 3.0, 8.0, 24.0, 40.0, 72.0, 168.0],
            ),
            unit(
                &["minute"],
                &["minutes"],
                &["mins", "min"],
                &["min", "mins"],
                "a",
                &[1.0, 5.0, 15.0, 45.0, 90.0, 150.0, 500.0, 1440.0],
            ),
            unit(
                &["second"],
                &["seconds"],
                &["secs", "s"],
                &["s"],
                "a",
                &[1.0, 30.0, 90.0, 300.0, 3600.0, 10000.0, 86400.0],
            ),
            unit(
                &["day"],
                &["days"],
                &[],
                &[],
                "a",
                &[1.0, 2.0, 3.0, 7.0, 10.0, 30.0, 90.0, 100.0, 365.0, 1000.0],
            ),
            unit(
                &["week"],
                &["weeks"],
                &[],
                &[],
                "a",
                &[1.0, 2.0, 6.0, 12.0, 40.0, 52.0],
            ),
            unit(
                &["year"],
                &["years"],
                &[],
                &[],
                "a",
                &[1.0, 2.0, 5.0, 10.0, 18.0, 30.0],
            ),
            unit(
                &["millisecond"],
                &["milliseconds"],
                &["ms"],
                &["ms"],
                "a",
                &[1.0, 16.0, 100.0, 250.0, 1500.0],
            ),
        ],
        pairs: &[
            (0, 1),
            (1, 0),
            (1, 2),
            (2, 1),
            (3, 0),
            (0, 3),
            (4, 3),
            (3, 4),
            (5, 3),
            (5, 4),
            (3, 1),
            (5, 0),
            (6, 2),
            (2, 6),
            (0, 2),
        ],
        a_pairs: &[
            (3, 0),
            (0, 1),
            (4, 3),
            (5, 3),
            (5, 4),
            (3, 2),
            (0, 2),
            (1, 2),
            (5, 0),
            (2, 6),
            (3, 1),
        ],
        weight: 1.0,
    },
    Category {
        name: "angle",
        units: &[
            unit(
                &["degree"],
                &["degrees"],
                &["deg", "°"],
                &["°"],
                "a",
                &[1.0, 30.0, 45.0, 60.0, 90.0, 180.0, 270.0, 360.0],
            ),
            unit(
                &["radian"],
                &["radians"],
                &["rad"],
                &["rad"],
                "a",
                &[0.5, 1.0, 1.5, 2.0, 3.0, 4.5],
            ),
        ],
        pairs: &[(0, 1), (1, 0)],
        a_pairs: &[(1, 0)],
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
                MONEY_VALUES,
            ),
            money(&["euro"], &["euros"], &["EUR", "eur"], "€", MONEY_VALUES),
            money(
                &["british pound", "pound"],
                &["pounds", "british pounds", "pounds sterling", "quid"],
                &["GBP", "gbp"],
                "£",
                MONEY_VALUES,
            ),
            money(
                &["yen"],
                &["yen", "japanese yen"],
                &["JPY", "jpy"],
                "¥",
                &[500.0, 1000.0, 3000.0, 5000.0, 10000.0, 25000.0, 100000.0],
            ),
            money(
                &["canadian dollar"],
                &["canadian dollars"],
                &["CAD", "cad"],
                "",
                MONEY_VALUES,
            ),
            money(
                &["australian dollar"],
                &["australian dollars", "aussie dollars"],
                &["AUD", "aud"],
                "",
                MONEY_VALUES,
            ),
            money(
                &["swiss franc"],
                &["swiss francs"],
                &["CHF", "chf"],
                "",
                MONEY_VALUES,
            ),
            money(
                &["rupee"],
                &["rupees", "indian rupees"],
                &["INR", "inr"],
                "",
                &[100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 50000.0],
            ),
            money(
                &["peso"],
                &["pesos", "mexican pesos"],
                &["MXN", "mxn"],
                "",
                &[50.0, 100.0, 200.0, 500.0, 1500.0, 5000.0],
            ),
            money(
                &["yuan"],
                &["yuan", "chinese yuan"],
                &["CNY", "cny", "RMB"],
                "",
                &[10.0, 50.0, 100.0, 500.0, 1000.0, 8000.0],
            ),
            money(
                &["won"],
                &["korean won", "won"],
                &["KRW", "krw"],
                "",
                &[5000.0, 10000.0, 50000.0, 100000.0, 1000000.0],
            ),
            money(
                &["real"],
                &["brazilian reais", "reais"],
                &["BRL", "brl"],
                "",
                &[20.0, 50.0, 100.0, 300.0, 1000.0],
            ),
            money(
                &["krona"],
                &["swedish kronor", "kronor"],
                &["SEK", "sek"],
                "",
                &[50.0, 100.0, 500.0, 1000.0, 5000.0],
            ),
            money(
                &["baht"],
                &["thai baht", "baht"],
                &["THB", "thb"],
                "",
                &[100.0, 500.0, 1000.0, 3000.0, 20000.0],
            ),
        ],
        pairs: &[
            (0, 1),
            (1, 0),
            (0, 2),
            (2, 0),
            (1, 2),
            (2, 1),
            (0, 3),
            (3, 0),
            (1, 3),
            (0, 4),
            (4, 0),
            (0, 5),
            (5, 0),
            (6, 1),
            (1, 6),
            (7, 0),
            (0, 7),
            (8, 0),
            (0, 8),
            (9, 0),
            (10, 0),
            (11, 0),
            (12, 1),
            (13, 0),
            (2, 7),
            (1, 5),
            (3, 10),
            (2, 4),
        ],
        a_pairs: &[
            (0, 1),
            (1, 0),
            (0, 2),
            (2, 0),
            (0, 3),
            (1, 3),
            (0, 7),
            (0, 8),
            (1, 2),
            (2, 1),
            (0, 4),
            (0, 13),
        ],
        weight: 3.5,
    },
];

/// A context that restricts the conversion: category, allowed `from` units
/// (by index), the value range people would state there.
struct Context {
    name: &'static str,
    category: &'static str,
    /// `(from index, values)`; the `to` unit is any paired unit of the category.
    from: &'static [(usize, &'static [f64])],
}

const CONTEXTS: &[Context] = &[
    Context {
        name: "recipe",
        category: "cooking",
        from: &[
            (0, &[0.5, 0.75, 1.0, 1.5, 2.0, 3.0]),
            (1, &[1.0, 2.0, 3.0]),
            (2, &[1.0, 2.0]),
            (3, &[100.0, 125.0, 200.0, 250.0]),
            (8, &[4.0, 8.0, 12.0]),
        ],
    },
    Context {
        name: "oven",
        category: "temperature",
        from: &[
            (1, &[325.0, 350.0, 375.0, 400.0, 425.0, 450.0]),
            (0, &[160.0, 180.0, 190.0, 200.0, 220.0]),
        ],
    },
    Context {
        name: "fever",
        category: "temperature",
        from: &[
            (0, &[37.5, 38.0, 38.5, 39.0, 39.4, 40.0]),
            (1, &[99.5, 100.4, 101.0, 102.0, 103.0]),
        ],
    },
    Context {
        name: "outside",
        category: "temperature",
        from: &[
            (
                0,
                &[-5.0, 0.0, 4.0, 12.0, 18.0, 22.0, 27.0, 31.0, 35.0, 40.0],
            ),
            (1, &[14.0, 23.0, 32.0, 45.0, 60.0, 72.0, 85.0, 95.0, 104.0]),
        ],
    },
    Context {
        name: "run",
        category: "length",
        from: &[
            (0, &[3.0, 5.0, 8.0, 10.0, 12.0, 21.1, 42.2]),
            (1, &[1.0, 2.0, 3.0, 5.0, 6.2, 13.1, 26.2]),
        ],
    },
    Context {
        name: "speed",
        category: "speed",
        from: &[
            (0, &[25.0, 30.0, 45.0, 55.0, 65.0, 70.0, 80.0]),
            (1, &[30.0, 50.0, 80.0, 100.0, 110.0, 120.0, 130.0]),
        ],
    },
    Context {
        name: "data",
        category: "data",
        from: &[
            (1, &[5.0, 10.0, 20.0, 50.0, 64.0, 100.0, 128.0, 256.0]),
            (0, &[300.0, 500.0, 700.0, 1500.0]),
            (2, &[1.0, 2.0, 4.0]),
        ],
    },
    Context {
        name: "weigh",
        category: "mass",
        from: &[
            (0, &[55.0, 62.0, 70.0, 75.0, 80.0, 95.0, 110.0]),
            (1, &[120.0, 135.0, 150.0, 165.0, 180.0, 200.0, 230.0]),
            (4, &[9.0, 10.0, 11.0, 12.0, 13.0, 15.0]),
        ],
    },
    Context {
        name: "luggage",
        category: "mass",
        from: &[
            (0, &[7.0, 10.0, 15.0, 20.0, 23.0, 32.0]),
            (1, &[15.0, 22.0, 33.0, 44.0, 50.0, 70.0]),
        ],
    },
    Context {
        name: "home",
        category: "area",
        from: &[
            (0, &[450.0, 650.0, 800.0, 1000.0, 1200.0, 1800.0, 2500.0]),
            (1, &[35.0, 50.0, 65.0, 80.0, 100.0, 150.0]),
        ],
    },
    Context {
        name: "price",
        category: "currency",
        from: &[],
    },
];

/// A "how many <to> in a <from>" conversion (value 1); None for categories
/// without such pairs (temperature).
pub(crate) fn one_of(rng: &mut Rng) -> Option<Conversion> {
    let cats: Vec<&Category> = CATEGORIES
        .iter()
        .filter(|c| !c.a_pairs.is_empty())
        .collect();
    let weights: Vec<f64> = cats.iter().map(|c| c.weight).collect();
    let cat = cats.get(rng.weighted(&weights))?;
    let (f, t) = *rng.pick(cat.a_pairs)?;
    Some(Conversion {
        category: cat.name,
        value: 1.0,
        from: *cat.units.get(f)?,
        to: *cat.units.get(t)?,
    })
}

/// A chosen conversion, before it is written into a template.
#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    pub category: &'static str,
    pub value: f64,
    pub from: Unit,
    pub to: Unit,
}

fn jitter(base: f64, rng: &mut Rng) -> f64 {
    if base > 12.0 && base.fract() == 0.0 && rng.chance(0.3) {
        let spread = (base * 0.3) as i64;
        (base + rng.range(-spread, spread) as f64).max(2.0)
    } else {
        base
    }
}

impl Conversion {
    /// Picks a category by weight, a natural pair and a natural value.
    pub(crate) fn pick(rng: &mut Rng) -> Self {
        let weights: Vec<f64> = CATEGORIES.iter().map(|c| c.weight).collect();
        let cat = &CATEGORIES[rng.weighted(&weights)];
        Self::in_category(cat, rng)
    }

    fn in_category(cat: &Category, rng: &mut Rng) -> Self {
        let (from_i, to_i) = rng.pick(cat.pairs).copied().unwrap_or((0, 1));
        let from = cat.units[from_i % cat.units.len()];
        let to = cat.units[to_i % cat.units.len()];
        let base = rng.pick(from.values).copied().unwrap_or(1.0);
        Self {
            category: cat.name,
            value: jitter(base, rng),
            from,
            to,
        }
    }

    /// A conversion that fits a named context ("recipe", "oven", "weigh", ...)
    /// or a category name; None for an unknown name.
    pub(crate) fn for_context(name: &str, rng: &mut Rng) -> Option<Self> {
        if let Some(cat) = CATEGORIES.iter().find(|c| c.name == name) {
            return Some(Self::in_category(cat, rng));
        }
        let ctx = CONTEXTS.iter().find(|c| c.name == name)?;
        let cat = CATEGORIES.iter().find(|c| c.name == ctx.category)?;
        if ctx.from.is_empty() {
            return Some(Self::in_category(cat, rng));
        }
        let (from_i, values) = *rng.pick(ctx.from)?;
        let tos: Vec<usize> = cat
            .pairs
            .iter()
            .filter(|(f, _)| *f == from_i)
            .map(|(_, t)| *t)
            .collect();
        let to_i = *rng.pick(&tos)?;
        Some(Self {
            category: cat.name,
            value: *rng.pick(values)?,
            from: *cat.units.get(from_i)?,
            to: *cat.units.get(to_i)?,
        })
    }
}

/// The number as people type it: "26.2", "1500" or "1,500", "0.5" or ".5".
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
    let digits = n.unsigned_abs().to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap_or(""))
        .collect();
    let out = groups.join(",");
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
    fn pairs_are_valid_and_distinct() {
        for cat in CATEGORIES {
            for (f, t) in cat.pairs.iter().chain(cat.a_pairs) {
                assert!(*f < cat.units.len() && *t < cat.units.len(), "{}", cat.name);
                assert_ne!(f, t, "{}", cat.name);
            }
        }
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let c = Conversion::pick(&mut rng);
            assert_ne!(c.from.singular, c.to.singular);
            assert!(c.value.is_finite());
        }
    }

    #[test]
    fn contexts_resolve() {
        let mut rng = Rng::new(4);
        for ctx in CONTEXTS {
            for _ in 0..20 {
                let c = Conversion::for_context(ctx.name, &mut rng).unwrap();
                assert_eq!(c.category, ctx.category);
            }
        }
        assert!(Conversion::for_context("nope", &mut rng).is_none());
    }
}
