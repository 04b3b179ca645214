//! The plot of a full run: writes per second against jobs in flight behind
//! the slow TSDB (with the ideal and the target), and readings per second
//! against worker processes (with the TSDB's ceiling).

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::Report;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 500;

/// Draws `benchmarks.png` from the report's medians and ranges.
pub fn draw(report: &Report, path: &Path, font: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(font).with_context(|| {
        format!(
            "reading the plot's font {} (Debian package fonts-dejavu-core, or --font)",
            font.display()
        )
    })?;
    // The font must live as long as the process; it is read once per run.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a TrueType font", font.display()))?;

    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(WIDTH / 2);
    in_flight_panel(report, &left)?;
    workers_panel(report, &right)?;
    root.present().map_err(plot_error)?;
    println!("bench: plot in {}", path.display());
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn in_flight_panel(report: &Report, area: &Area<'_>) -> anyhow::Result<()> {
    let sizes = &report.sizes;
    let per_write = sizes.slow_write_ms as f64 / 1000.0;
    let points: Vec<(f64, f64, f64, f64)> = sizes
        .slow_in_flight
        .iter()
        .filter_map(|&n| {
            let s = report.summary(&format!("slow_writes_per_s_{n}"))?;
            Some((f64::from(n), s.median, s.min, s.max))
        })
        .collect();
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let top = (max_x / per_write).max(points.iter().map(|p| p.3).fold(1.0, f64::max)) * 1.1;

    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "(5) TSDB answering in {} ms: writes/s vs jobs in flight",
                sizes.slow_write_ms
            ),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.8f64..max_x * 1.25).log_scale(), 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("jobs in flight (worker --prefetch), log scale")
        .y_desc("writes/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(plot_error)?;

    let ideal: Vec<(f64, f64)> = (0..=40)
        .map(|i| {
            let n = 0.8 * (max_x * 1.25 / 0.8).powf(f64::from(i) / 40.0);
            (n, n / per_write)
        })
        .collect();
    chart
        .draw_series(LineSeries::new(ideal.clone(), BLACK.mix(0.4)))
        .map_err(plot_error)?
        .label("ideal: in-flight / 0.5 s")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    chart
        .draw_series(DashedLineSeries::new(
            ideal.iter().map(|&(n, w)| (n, 0.8 * w)),
            6,
            4,
            RED.mix(0.6).into(),
        ))
        .map_err(plot_error)?
        .label("target: 0.8 × ideal")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.mix(0.6)));
    measured(&mut chart, &points, BLUE, "measured (median, min–max)")
}

fn workers_panel(report: &Report, area: &Area<'_>) -> anyhow::Result<()> {
    let points: Vec<(f64, f64, f64, f64)> = report
        .sizes
        .workers
        .iter()
        .filter_map(|&w| {
            let s = report.summary(&format!("scale_readings_per_s_w{w}"))?;
            Some((w as f64, s.median, s.min, s.max))
        })
        .collect();
    let ceiling = report.median("tsdb_points_per_s");
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let top = points.iter().map(|p| p.3).fold(ceiling.max(1.0), f64::max) * 1.15;

    let mut chart = ChartBuilder::on(area)
        .caption(
            "(6) 3,600-reading jobs: readings/s vs worker processes",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.5f64..max_x + 0.5, 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("worker processes (sharing the cores with broker, TSDB, simulator)")
        .y_desc("readings/s")
        .x_label_formatter(&whole_numbers_only)
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()
        .map_err(plot_error)?;
    if ceiling.is_finite() {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.5, ceiling), (max_x + 0.5, ceiling)],
                6,
                4,
                BLACK.mix(0.5).into(),
            ))
            .map_err(plot_error)?
            .label("(3) TSDB ceiling, points/s")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    measured(
        &mut chart,
        &points,
        GREEN.mix(0.8).to_rgba(),
        "measured (median, min–max)",
    )
}

fn measured<'a, 'b: 'a, X, C>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, RangedCoordf64>>,
    points: &[(f64, f64, f64, f64)],
    color: C,
    label: &str,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    C: Color + Copy + 'static,
{
    let style = color.stroke_width(2);
    chart
        .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), style))
        .map_err(plot_error)?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    chart
        .draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.0, p.1), 4, color.filled())),
        )
        .map_err(plot_error)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, color.filled(), 8)),
        )
        .map_err(plot_error)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_error)
}

/// Labels whole numbers only, so that a worker axis never reads "2, 2".
fn whole_numbers_only(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

fn plot_error<E: std::fmt::Display>(err: E) -> anyhow::Error {
    anyhow!("drawing the plot: {err}")
}
