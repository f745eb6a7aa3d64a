//! Math for calculator examples: expressions written the ways people type them
//! ("347 * 29", "15% of 2850", "sqrt of 44567", "2 to the power of 20", "8!",
//! "average of 12, 15 and 22", "twelve times seven") and small word problems
//! whose label is the arithmetic they stand for ("split 240 between 6 people" -> `240 / 6`).

use super::rng::Rng;
use super::units::with_commas;

/// An expression as written in the query (it is also the label).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub text: String,
    pub kind: &'static str,
}

/// A word problem: the sentence (containing the numbers) and the arithmetic label.
#[derive(Debug, Clone)]
pub(crate) struct WordProblem {
    pub sentence: String,
    pub expression: String,
    pub kind: &'static str,
}

const ONES: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: &[&str] = &[
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// English words for 0..=999.
pub(crate) fn number_words(n: u32) -> String {
    if n < 20 {
        return ONES[n as usize].to_string();
    }
    if n < 100 {
        let t = TENS[(n / 10) as usize];
        let ones = n % 10;
        return if ones == 0 {
            t.to_string()
        } else {
            format!("{t}-{}", ONES[(n % 10) as usize])
        };
    }
    let h = format!("{} hundred", ONES[(n / 100) as usize]);
    let rest = n % 100;
    if rest == 0 {
        h
    } else {
        format!("{h} and {}", number_words(n % 100))
    }
}

fn int(rng: &mut Rng) -> i64 {
    match rng.below(10) {
        0..=2 => rng.range(2, 20),
        3..=5 => rng.range(11, 99),
        6..=7 => rng.range(100, 999),
        8 => rng.range(1000, 9999),
        _ => rng.range(10_000, 250_000),
    }
}

fn num_text(n: i64, rng: &mut Rng) -> String {
    if n >= 1000 && rng.chance(0.25) {
        with_commas(n)
    } else {
        n.to_string()
    }
}

fn decimal(rng: &mut Rng) -> String {
    let whole = rng.range(0, 199);
    let frac = rng.range(1, 99);
    if rng.chance(0.5) {
        format!("{whole}.{frac:02}")
    } else {
        format!("{whole}.{}", frac % 10 + 1)
    }
}

fn operand(rng: &mut Rng) -> String {
    if rng.chance(0.18) {
        decimal(rng)
    } else {
        let n = int(rng);
        num_text(n, rng)
    }
}

fn op(rng: &mut Rng) -> &'static str {
    const OPS: &[(&str, f64)] = &[
        ("+", 3.0),
        ("-", 2.5),
        ("*", 3.0),
        ("x", 1.5),
        ("×", 0.5),
        ("/", 2.5),
        ("÷", 0.4),
        ("plus", 1.0),
        ("minus", 0.8),
        ("times", 1.2),
        ("divided by", 1.0),
        ("multiplied by", 0.5),
    ];
    let weights: Vec<f64> = OPS.iter().map(|o| o.1).collect();
    OPS[rng.weighted(&weights)].0
}

fn spaced(rng: &mut Rng, a: &str, op: &str, b: &str) -> String {
    let symbolic = op.chars().all(|c| !c.is_alphabetic()) || op == "x";
    if symbolic && op != "x" && rng.chance(0.3) {
        format!("{a}{op}{b}")
    } else {
        format!("{a} {op} {b}")
    }
}

fn list(rng: &mut Rng, count: usize) -> String {
    let nums: Vec<String> = (0..count)
        .map(|_| {
            if rng.chance(0.15) {
                decimal(rng)
            } else {
                rng.range(1, 120).to_string()
            }
        })
        .collect();
    if rng.chance(0.5) {
        let (last, rest) = nums
            .split_last()
            .map(|(l, r)| (l.clone(), r.to_vec()))
            .unwrap_or_default();
        format!("{} and {last}", rest.join(", "))
    } else {
        nums.join(", ")
    }
}

/// A random expression, written as typed.
pub(crate) fn expression(rng: &mut Rng) -> Expr {
    const KINDS: &[(&str, f64)] = &[
        ("binary", 5.0),
        ("chain", 1.6),
        ("percent", 2.4),
        ("power", 1.3),
        ("root", 1.3),
        ("factorial", 0.6),
        ("average", 0.8),
        ("trig", 0.6),
        ("log", 0.5),
        ("modulo", 0.3),
        ("words", 0.6),
        ("fraction", 0.5),
        ("scientific", 0.2),
    ];
    let weights: Vec<f64> = KINDS.iter().map(|k| k.1).collect();
    let kind = KINDS[rng.weighted(&weights)].0;
    let text = match kind {
        "binary" => {
            let a = operand(rng);
            let b = operand(rng);
            let o = op(rng);
            spaced(rng, &a, o, &b)
        }
        "chain" => {
            let a = rng.range(2, 500).to_string();
            let b = rng.range(2, 300).to_string();
            let c = rng.range(2, 60).to_string();
            let o1 = rng.pick_str(&["+", "-", "*"]);
            let o2 = rng.pick_str(&["*", "/", "+", "-"]);
            match rng.below(4) {
                0 => format!("({a} {o1} {b}) {o2} {c}"),
                1 => format!("{a} {o1} {b} {o2} {c}"),
                2 => format!("{a} {o2} ({b} {o1} {c})"),
                _ => format!("({a}{o1}{b}){o2}{c}"),
            }
        }
        "percent" => {
            let p = rng.pick_str(&[
                "5", "7.5", "10", "12", "12.5", "15", "17", "18", "20", "22", "25", "30", "33",
                "35", "40", "45", "60", "65", "75", "8.25", "3",
            ]);
            let n = num_text(int(rng).max(20), rng);
            match rng.below(6) {
                0 => format!("{p} percent of {n}"),
                1 => format!("{p} % of {n}"),
                _ => format!("{p}% of {n}"),
            }
        }
        "power" => {
            let b = rng.range(2, 15);
            let e = rng.range(2, 24);
            match rng.below(7) {
                0 => format!("{b}^{e}"),
                1 => format!("{b} to the power of {e}"),
                2 => format!("{b} squared"),
                3 => format!("{b} cubed"),
                4 => format!("{b}**{e}"),
                5 => format!("{b} to the {e}th power"),
                _ => format!("{b} raised to {e}"),
            }
        }
        "root" => {
            let n = if rng.chance(0.5) {
                let r = rng.range(2, 60);
                r * r
            } else {
                rng.range(2, 99_999)
            };
            match rng.below(7) {
                0 => format!("sqrt({n})"),
                1 => format!("sqrt of {n}"),
                2 => format!("square root of {n}"),
                3 => format!("cube root of {}", rng.range(2, 30).pow(3)),
                4 => format!("√{n}"),
                5 => format!("the square root of {n}"),
                _ => format!("sqrt {n}"),
            }
        }
        "factorial" => {
            let n = rng.range(3, 20);
            match rng.below(3) {
                0 => format!("{n}!"),
                1 => format!("factorial of {n}"),
                _ => format!("{n} factorial"),
            }
        }
        "average" => {
            let count = 3 + rng.below(5);
            let l = list(rng, count);
            match rng.below(4) {
                0 => format!("mean of {l}"),
                1 => format!("the average of {l}"),
                _ => format!("average of {l}"),
            }
        }
        "trig" => {
            let f = rng.pick_str(&["sin", "cos", "tan"]);
            let a = rng.pick_str(&["30", "45", "60", "90", "15", "75", "120", "180", "37"]);
            match rng.below(5) {
                0 => format!("{f}({a})"),
                1 => format!("{f} {a} degrees"),
                2 => format!("{f}({a}°)"),
                3 => format!("{f}(pi/{})", rng.pick_str(&["2", "3", "4", "6"])),
                _ => format!("{f} of {a} degrees"),
            }
        }
        "log" => match rng.below(5) {
            0 => format!(
                "log({})",
                rng.pick_str(&["10", "100", "1000", "50", "2", "5000"])
            ),
            1 => format!("ln({})", rng.range(2, 100)),
            2 => format!(
                "log base {} of {}",
                rng.pick_str(&["2", "3", "5", "10"]),
                rng.pick_str(&["8", "64", "81", "125", "1024", "1000"])
            ),
            3 => format!("ln {}", rng.range(2, 50)),
            _ => format!("log10({})", rng.range(2, 100_000)),
        },
        "modulo" => format!("{} mod {}", rng.range(10, 999), rng.range(2, 12)),
        "words" => {
            let a = number_words(rng.range(2, 120) as u32);
            let b = number_words(rng.range(2, 40) as u32);
            let o = rng.pick_str(&["times", "plus", "minus", "divided by", "multiplied by"]);
            format!("{a} {o} {b}")
        }
        "fraction" => {
            let (n, d) = *rng
                .pick(&[
                    (1, 2),
                    (1, 3),
                    (2, 3),
                    (3, 4),
                    (1, 4),
                    (3, 8),
                    (5, 6),
                    (2, 5),
                ])
                .unwrap_or(&(1, 2));
            format!("{n}/{d} of {}", rng.range(2, 90) * 12)
        }
        _ => {
            let m = rng.range(1, 9);
            let e = rng.range(3, 23);
            let o = rng.pick_str(&["*", "/", "x"]);
            format!("{m}.{}e{e} {o} {}", rng.range(1, 99), rng.range(2, 999))
        }
    };
    Expr { text, kind }
}

/// A word problem and the arithmetic it needs.
pub(crate) fn word_problem(rng: &mut Rng) -> WordProblem {
    match rng.below(11) {
        0 => {
            let p = rng.pick_str(&["15", "18", "20", "22", "25", "10"]);
            let x = format!("{}.{:02}", rng.range(12, 240), rng.range(0, 99));
            let sentence = rng.pick_str(&[
                "what's a {p}% tip on ${x}",
                "how much is a {p} percent tip on a ${x} bill",
                "{p}% tip on {x}",
                "tip {p}% on ${x}, how much is that",
                "our dinner was ${x}, what's {p}% for the tip",
            ]);
            WordProblem {
                sentence: sentence.replace("{p}", p).replace("{x}", &x),
                expression: format!("{p}% of {x}"),
                kind: "tip",
            }
        }
        1 => {
            let n = rng.range(2, 12);
            let x = rng.range(3, 300) * n * if rng.chance(0.5) { 1 } else { 2 };
            let sentence = rng.pick_str(&[
                "split {x} between {n} people",
                "if we split a ${x} bill {n} ways how much does each person pay",
                "we're {n} people and the total is {x} dollars, how much each",
                "divide {x} by {n} people",
                "${x} shared equally among {n} friends is how much each",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{x}", &x.to_string())
                    .replace("{n}", &n.to_string()),
                expression: format!("{x} / {n}"),
                kind: "split",
            }
        }
        2 => {
            let n = rng.range(2, 14);
            let p = format!(
                "{}.{}",
                rng.range(1, 80),
                rng.pick_str(&["50", "99", "25", "75", "00"])
            );
            let thing = rng.pick_str(&[
                "tickets",
                "coffees",
                "pizzas",
                "shirts",
                "books",
                "bags of rice",
                "movie passes",
            ]);
            let sentence = rng.pick_str(&[
                "{n} {thing} at ${p} each, what's the total",
                "if i buy {n} {thing} at {p} each how much is it",
                "how much do {n} {thing} cost at ${p} apiece",
                "total for {n} {thing} at {p} each",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{n}", &n.to_string())
                    .replace("{p}", &p)
                    .replace("{thing}", thing),
                expression: format!("{n} * {p}"),
                kind: "unit_price",
            }
        }
        3 => {
            let g = rng.range(8, 18);
            let d = g * rng.range(18, 42);
            let sentence = rng.pick_str(&[
                "i drove {d} miles on {g} gallons, what's my mpg",
                "{d} miles on {g} gallons is how many miles per gallon",
                "what mileage do i get if i did {d} miles with {g} gallons",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{d}", &d.to_string())
                    .replace("{g}", &g.to_string()),
                expression: format!("{d} / {g}"),
                kind: "mpg",
            }
        }
        4 => {
            let x = rng.range(20, 900);
            let p = rng.pick_str(&["10", "15", "20", "25", "30", "40", "50", "60", "70"]);
            let sentence = rng.pick_str(&[
                "how much is {x} with {p}% off",
                "what's {p} percent off {x} dollars",
                "a ${x} jacket is {p}% off, what's the sale price",
                "price after a {p}% discount on {x}",
            ]);
            WordProblem {
                sentence: sentence.replace("{x}", &x.to_string()).replace("{p}", p),
                expression: format!("{x} - {p}% of {x}"),
                kind: "discount",
            }
        }
        5 => {
            let h = format!("{}", rng.range(12, 65));
            let n = rng.range(10, 50);
            let sentence = rng.pick_str(&[
                "if i make ${h} an hour and work {n} hours a week how much is that a week",
                "{h} dollars an hour times {n} hours",
                "i earn {h}/hr and worked {n} hours, how much did i make",
            ]);
            WordProblem {
                sentence: sentence.replace("{h}", &h).replace("{n}", &n.to_string()),
                expression: format!("{h} * {n}"),
                kind: "wage",
            }
        }
        6 => {
            let nums: Vec<String> = (0..rng.range(3, 5))
                .map(|_| rng.range(5, 450).to_string())
                .collect();
            let joined = nums.join(", ");
            let sentence = rng.pick_str(&[
                "add up {l}",
                "what's the total of {l}",
                "sum of {l}",
                "can you add {l} together",
            ]);
            WordProblem {
                sentence: sentence.replace("{l}", &joined),
                expression: nums.join(" + "),
                kind: "sum",
            }
        }
        7 => {
            let a = rng.range(100, 5000);
            let b = rng.range(10, a.max(11) - 1);
            let sentence = rng.pick_str(&[
                "how much more is {a} than {b}",
                "difference between {a} and {b}",
                "i had {a} dollars and spent {b}, how much is left",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{a}", &a.to_string())
                    .replace("{b}", &b.to_string()),
                expression: format!("{a} - {b}"),
                kind: "difference",
            }
        }
        8 => {
            let x = rng.range(1, 50) * 1000;
            let r = rng.pick_str(&["2", "3", "4", "4.5", "5", "6", "7"]);
            let y = rng.range(2, 30);
            let sentence = rng.pick_str(&[
                "if i invest {x} at {r}% a year for {y} years how much will i have",
                "{x} dollars compounded yearly at {r}% for {y} years",
                "what does {x} grow to at {r} percent interest over {y} years",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{x}", &x.to_string())
                    .replace("{r}", r)
                    .replace("{y}", &y.to_string()),
                expression: format!("{x} * (1 + {r}/100)^{y}"),
                kind: "compound",
            }
        }
        9 => {
            let x = format!("{}.{:02}", rng.range(5, 900), rng.range(0, 99));
            let p = rng.pick_str(&["5", "6", "7", "8", "8.25", "8.875", "10", "13", "20"]);
            let sentence = rng.pick_str(&[
                "{x} plus {p}% sales tax",
                "what's {x} after {p} percent tax",
                "how much is ${x} with {p}% tax added",
            ]);
            WordProblem {
                sentence: sentence.replace("{x}", &x).replace("{p}", p),
                expression: format!("{x} + {p}% of {x}"),
                kind: "tax",
            }
        }
        _ => {
            let per = rng.range(3, 40);
            let n = rng.range(3, 52);
            let sentence = rng.pick_str(&[
                "if i save {per} dollars a week for {n} weeks how much do i have",
                "{per} a day for {n} days, total?",
                "i run {per} km every week, how far is that in {n} weeks",
            ]);
            WordProblem {
                sentence: sentence
                    .replace("{per}", &per.to_string())
                    .replace("{n}", &n.to_string()),
                expression: format!("{per} * {n}"),
                kind: "repeat",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_words_read_right() {
        assert_eq!(number_words(7), "seven");
        assert_eq!(number_words(42), "forty-two");
        assert_eq!(number_words(300), "three hundred");
        assert_eq!(number_words(115), "one hundred and fifteen");
    }

    #[test]
    fn expressions_and_problems_are_non_empty() {
        let mut rng = Rng::new(5);
        for _ in 0..500 {
            let e = expression(&mut rng);
            assert!(!e.text.trim().is_empty());
            assert!(e.text.chars().any(|c| c.is_ascii_digit()) || e.kind == "words");
            let w = word_problem(&mut rng);
            assert!(w.expression.chars().any(|c| c.is_ascii_digit()));
            assert!(!w.sentence.contains('{'));
        }
    }
}
