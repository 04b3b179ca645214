//! Medians, spreads and percentiles of the figures a run collects.

use serde::Serialize;

/// Every figure's samples, one per run, in the order they were first
/// recorded (which is the table's order).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    figures: Vec<(String, Vec<f64>)>,
}

impl Samples {
    /// Adds one run's value of `key`.
    pub fn push(&mut self, key: impl Into<String>, value: f64) {
        let key = key.into();
        match self.figures.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => self.figures.push((key, vec![value])),
        }
    }

    /// The summary of `key`, when any run recorded it.
    pub fn get(&self, key: &str) -> Option<Summary> {
        self.figures
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, values)| Summary::of(values))
    }

    /// Every figure with its summary.
    pub fn summaries(&self) -> impl Iterator<Item = (&str, Summary)> {
        self.figures
            .iter()
            .map(|(key, values)| (key.as_str(), Summary::of(values)))
    }
}

/// The median of a figure's runs and their range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Median of the runs.
    pub median: f64,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
    /// Every run, in order.
    pub samples: Vec<f64>,
}

impl Summary {
    /// Summarises a non-empty list of runs.
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: percentile_of_sorted(&sorted, 50.0),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            samples: values.to_vec(),
        }
    }

    /// The spread as a fraction of the median: (max − min) / median.
    pub fn relative_spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

/// The `p`-th percentile (0 to 100) of sorted values, interpolating
/// linearly between the two nearest ranks. NaN when empty.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = p / 100.0 * (n - 1) as f64;
            let low = rank.floor() as usize;
            let high = rank.ceil() as usize;
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_midpoint() {
        let summary = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((summary.median, summary.min, summary.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let sorted: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(percentile_of_sorted(&sorted, 99.0), 99.0);
        assert_eq!(percentile_of_sorted(&[1.0, 2.0], 50.0), 1.5);
        assert!(percentile_of_sorted(&[], 50.0).is_nan());
    }

    #[test]
    fn samples_keep_the_order_figures_were_first_seen() {
        let mut samples = Samples::default();
        samples.push("b", 1.0);
        samples.push("a", 2.0);
        samples.push("b", 3.0);
        let keys: Vec<_> = samples.summaries().map(|(k, _)| k.to_owned()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(samples.get("b").unwrap().median, 2.0);
    }
}
