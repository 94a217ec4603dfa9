//! A sweep as figures: the final training loss and the validation accuracy against depth, one
//! line per family (and normalisation and learning rate, when the grid has several), the median
//! over seeds with a band from the lowest to the highest seed — He et al. 2016's Fig. 1 and 6 as
//! the lab measures them.

use super::{Cell, CellResult, SweepFile};
use crate::figure::{Band, Figure, LineSeries, Look, Style};

/// What one line of a sweep figure stands for: the cells that differ only in depth and seed.
fn group_name(sweep: &SweepFile, c: &Cell) -> String {
    let mut name = c.family.clone();
    if sweep.grid.norms.len() > 1 {
        name.push_str(&format!(" {:?}", c.norm).to_lowercase());
    }
    if sweep.grid.lrs.len() > 1 {
        name.push_str(&format!(" lr {}", c.lr));
    }
    name
}

/// The median and range over seeds of `value` at each depth, for each group of cells.
fn lines(
    sweep: &SweepFile,
    value: impl Fn(&CellResult) -> Option<f64>,
) -> (Vec<LineSeries>, Vec<Band>) {
    let mut groups: Vec<String> = Vec::new();
    for r in &sweep.results {
        let g = group_name(sweep, &r.cell);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut depths = sweep.grid.depths.clone();
    depths.sort_unstable();
    depths.dedup();
    let (mut series, mut bands) = (Vec::new(), Vec::new());
    for (k, g) in groups.iter().enumerate() {
        let (mut mid, mut band) = (Vec::new(), Vec::new());
        for &d in &depths {
            let mut v: Vec<f64> = sweep
                .results
                .iter()
                .filter(|r| r.cell.depth == d && group_name(sweep, &r.cell) == *g)
                .filter_map(&value)
                .collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let median = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            mid.push([d as f64, median]);
            band.push([d as f64, v[0], v[n - 1]]);
        }
        series.push(
            LineSeries::new(format!("{g} (median over seeds)"), mid)
                .style(Style::LinePoints)
                .color(k),
        );
        if band.iter().any(|b| b[1] != b[2]) {
            bands.push(Band {
                name: format!("{g}: lowest to highest seed"),
                points: band,
                color: Some(k),
            });
        }
    }
    (series, bands)
}

/// The sweep's figures: final training loss (log) and validation accuracy against depth.
pub fn figures(sweep: &SweepFile) -> Vec<Figure> {
    let (loss, loss_bands) = lines(sweep, |r| r.final_loss);
    let (acc, acc_bands) = lines(sweep, |r| r.val_accuracy);
    let look = |bands| Look {
        bands,
        ..Look::default()
    };
    vec![
        Figure::lines(
            format!(
                "final training loss (mean of the last {} steps) against depth",
                super::FINAL_WINDOW
            ),
            "depth (blocks or layers of the preset)",
            "training loss",
            loss,
        )
        .log_y(true)
        .look(look(loss_bands)),
        Figure::lines(
            "validation accuracy at the end against depth",
            "depth (blocks or layers of the preset)",
            "validation accuracy",
            acc,
        )
        .look(look(acc_bands)),
    ]
}
