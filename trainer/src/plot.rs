//! Pictures of results, drawn with `plotters` as SVG: the confusion matrix of an
//! evaluation and training curves.

use std::path::Path;

use plotters::prelude::*;

use crate::eval::Confusion;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    /// The SVG file being drawn.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Draws a row-normalised confusion matrix (darker = larger share of the row) with counts.
pub fn confusion_svg(confusion: &Confusion, title: &str, path: &Path) -> Result<(), PlotError> {
    let n = confusion.labels.len();
    let cell = 56u32;
    let margin_left = 150u32;
    let margin_top = 150u32;
    let size = (
        margin_left + cell * n as u32 + 20,
        margin_top + cell * n as u32 + 40,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let text = |s: &str, x: i32, y: i32, style: TextStyle| {
        root.draw(&Text::new(s.to_string(), (x, y), style))
            .map_err(|e| plot_error(path, e))
    };
    text(title, 10, 10, ("sans-serif", 18).into_font().color(&BLACK))?;
    text(
        "rows: expected · columns: predicted",
        10,
        34,
        ("sans-serif", 13).into_font().color(&BLACK),
    )?;
    for (i, label) in confusion.labels.iter().enumerate() {
        let y = (margin_top + cell * i as u32 + cell / 2 - 6) as i32;
        text(label, 8, y, ("sans-serif", 12).into_font().color(&BLACK))?;
        let x = (margin_left + cell * i as u32 + cell / 2) as i32;
        let style = ("sans-serif", 12)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&BLACK);
        text(label, x - 6, (margin_top - 8) as i32, style)?;
    }
    for (r, row) in confusion.counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let shade = (255.0 * (1.0 - 0.85 * share)) as u8;
            let color = if r == c {
                RGBColor(shade, shade.saturating_add(40), shade)
            } else {
                RGBColor(255, shade, shade)
            };
            let x0 = (margin_left + cell * c as u32) as i32;
            let y0 = (margin_top + cell * r as u32) as i32;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                color.filled(),
            ))
            .map_err(|e| plot_error(path, e))?;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                RGBColor(200, 200, 200),
            ))
            .map_err(|e| plot_error(path, e))?;
            if count > 0 {
                let label = count.to_string();
                text(
                    &label,
                    x0 + cell as i32 / 2 - 4 * label.len() as i32,
                    y0 + cell as i32 / 2 - 7,
                    ("sans-serif", 14).into_font().color(&BLACK),
                )?;
            }
        }
    }
    root.present().map_err(|e| plot_error(path, e))
}

/// Draws named series of (x, y) points as lines, e.g. loss and accuracy per epoch.
pub fn curves_svg(
    title: &str,
    x_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    path: &Path,
) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max, 0.0..(y_max * 1.05).max(1e-6))
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (name, points)) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| plot_error(path, e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

/// Draws one bar per labeled value (e.g. accuracy per ablation run), values in [0, 1].
pub fn bars_svg(
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    path: &Path,
) -> Result<(), PlotError> {
    let width = (160 + 110 * bars.len() as u32).max(480);
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let low = bars
        .iter()
        .map(|(_, v)| *v)
        .fold(1.0f64, f64::min)
        .clamp(0.0, 0.9)
        - 0.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d(0..bars.len().max(1), low.max(0.0)..1.0)
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_label)
        .x_labels(bars.len().max(1))
        .x_label_formatter(&|i| bars.get(*i).map(|(l, _)| l.clone()).unwrap_or_default())
        .draw()
        .map_err(|e| plot_error(path, e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let mut bar = Rectangle::new([(i, low.max(0.0)), (i + 1, *v)], BLUE.mix(0.6).filled());
            bar.set_margin(0, 0, 12, 12);
            bar
        }))
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_confusion_and_curves_as_svg() {
        let dir = tempfile::tempdir().unwrap();
        let confusion = Confusion {
            labels: vec!["weather".into(), "none".into()],
            counts: vec![vec![3, 1], vec![0, 2]],
        };
        let path = dir.path().join("confusion.svg");
        confusion_svg(&confusion, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("weather"));
        let curves = dir.path().join("curves.svg");
        curves_svg(
            "loss",
            "epoch",
            &[("train", vec![(0.0, 1.0), (1.0, 0.5)])],
            &curves,
        )
        .unwrap();
        assert!(std::fs::read_to_string(&curves).unwrap().contains("train"));
    }
}
