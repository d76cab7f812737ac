//! The dashboard's chart: registrations and failures per day as inline SVG, pure — no
//! script, no outside asset, readable without colour (a table follows it on the page).

use std::fmt::Write;

use crate::ops::report::DayFigures;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const LEFT: u32 = 40;
const BOTTOM: u32 = 30;
const TOP: u32 = 10;

/// Two bars per day (registered, failed), with a scale and a caption for screen readers.
pub fn days_svg(days: &[DayFigures]) -> String {
    let max = days.iter().map(|d| d.registered.max(d.failed)).max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = f64::from(WIDTH - LEFT) / days.len().max(1) as f64;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let y = |v: u64| f64::from(TOP) + f64::from(plot_h) * (1.0 - v as f64 / max as f64);
    let total_reg: u64 = days.iter().map(|d| d.registered).sum();
    let total_failed: u64 = days.iter().map(|d| d.failed).sum();
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"chart-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Зарегистрировано и с ошибкой по дням подачи \
         за {} дн.: зарегистрировано {total_reg}, с ошибкой {total_failed}</title>",
        days.len()
    );
    // The scale: zero, half and the maximum.
    for v in [0, max / 2, max] {
        let yy = y(v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{WIDTH}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            LEFT - 4,
            yy + 4.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = f64::from(LEFT) + slot * i as f64;
        for (k, (value, class)) in [(d.registered, "registered"), (d.failed, "failed")].into_iter().enumerate() {
            let top = y(value);
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>{}: {} {value}</title></rect>",
                x + k as f64 * (bar + 1.0),
                f64::from(TOP + plot_h) - top,
                d.date.format("%d.%m"),
                if k == 0 { "зарегистрировано" } else { "с ошибкой" },
            );
        }
        if i % 5 == 0 || i + 1 == days.len() {
            let _ = write!(
                out,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar,
                HEIGHT - 10,
                d.date.format("%d.%m")
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_of_bars_a_day_scaled_to_the_largest() {
        let day = |n: u32, registered, failed| DayFigures {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, n).unwrap(),
            submitted: registered + failed,
            registered,
            failed,
        };
        let svg = days_svg(&[day(1, 10, 0), day(2, 4, 2), day(3, 0, 0)]);
        assert_eq!(svg.matches("<rect class=\"registered\"").count(), 3);
        assert_eq!(svg.matches("<rect class=\"failed\"").count(), 3);
        assert!(svg.contains("зарегистрировано 14, с ошибкой 2"), "{svg}");
        // The tallest bar spans the plot: from the top margin down to the axis.
        assert!(svg.contains(&format!("y=\"{TOP}.0\" width=")), "{svg}");
        assert!(!svg.contains("NaN"));
        assert!(days_svg(&[]).starts_with("<svg"));
    }
}
