//! When a vector set switches to a graph, and how the graph is built, searched and stored.

use usearch::ScalarKind;

/// When a vector set switches to a graph, and how the graph is built and searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnConfig {
    /// A set of this many vectors or more is searched through an HNSW graph; smaller sets are
    /// scanned exactly. `usize::MAX` keeps every set exact.
    pub threshold: usize,
    /// Graph degree (HNSW `M`).
    pub connectivity: usize,
    /// Candidate list while inserting (HNSW `ef_construction`).
    pub expansion_add: usize,
    /// Candidate list while searching (HNSW `ef`), raised to the number of hits asked for.
    /// `None` (the default) grows with the set: see [`AnnConfig::expansion_at`].
    pub expansion_search: Option<usize>,
    /// Threads that insert a large batch into the graph together.
    pub build_threads: usize,
    /// The element type the graph stores and navigates by. Its candidates are always
    /// re-ranked by the exact f32 dot product, so a narrower type costs recall only where the
    /// graph's order hides a neighbour beyond its candidate list.
    pub quantization: Quantization,
    /// How concurrent exact scans of one set share passes over its vectors.
    pub scan_sharing: ScanSharing,
}

/// How concurrent exact scans of one set share passes over the vectors (see [`VectorSet`]).
/// Either way, a search alone runs its pass at once, and a pass scores every query waiting
/// (up to eight).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanSharing {
    /// For searches run on an async executor's worker threads, one per core, which should
    /// not wait: a search that finds fewer passes running than there are cores runs one at
    /// once, and only waits when every core has one.
    #[default]
    PerCore,
    /// For searches run on a pool of threads that may wait (a blocking pool): while a pass
    /// runs, the queries arriving gather for the next one, and a second pass starts beside it
    /// only when a full batch waits. A pass for eight queries costs about three times a pass
    /// for one, so under load this scores more queries per core.
    Gather,
}

/// The graph's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quantization {
    /// 32-bit floats: 1,536 bytes per 384-d vector.
    F32,
    /// Half precision: half the memory traffic.
    F16,
    /// 8-bit integers (usearch scales unit vectors by 127): a quarter.
    I8,
}

impl Quantization {
    pub(crate) fn scalar_kind(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::I8 => ScalarKind::I8,
        }
    }
}

impl Default for AnnConfig {
    /// 20,000 vectors (below it an exact scan is about as fast as the graph), M = 16,
    /// ef_construction = 128, ef growing with the set (64 up to 100,000 vectors, 192 from
    /// 1,000,000), i8 elements, which kept recall higher than f32 elements at the same cost
    /// (ADR 0010, "The in-process index defaults").
    fn default() -> Self {
        AnnConfig {
            threshold: 20_000,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: None,
            build_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            quantization: Quantization::I8,
            scan_sharing: ScanSharing::PerCore,
        }
    }
}

impl AnnConfig {
    /// Every set exact, whatever its size.
    pub fn exact() -> Self {
        AnnConfig {
            threshold: usize::MAX,
            ..AnnConfig::default()
        }
    }

    /// The default configuration with another threshold.
    pub fn with_threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold.max(1);
        self
    }

    /// The default configuration with a fixed search expansion, whatever the set's size.
    pub fn with_expansion_search(mut self, ef: usize) -> Self {
        self.expansion_search = Some(ef.max(1));
        self
    }

    /// The search expansion for a set of `n` vectors: the fixed one if set, otherwise 64 up
    /// to 100,000 vectors and 192 from 1,000,000, growing with the logarithm of `n` between.
    ///
    /// A graph needs a wider candidate list as a query's near neighbours grow more numerous,
    /// and a wide list on a small set only costs time (ADR 0010, "Search expansion").
    pub fn expansion_at(&self, n: usize) -> usize {
        if let Some(ef) = self.expansion_search {
            return ef;
        }
        let (small, large) = (100_000f64, 1_000_000f64);
        let x = ((n as f64).clamp(small, large) / small).log10() / (large / small).log10();
        (MIN_EXPANSION as f64 + x * (MAX_EXPANSION - MIN_EXPANSION) as f64).round() as usize
    }

    /// The expansion a graph keeps as its own, below every search's.
    pub(crate) fn expansion_floor(&self) -> usize {
        self.expansion_search.unwrap_or(MIN_EXPANSION)
    }

    /// The default configuration with another graph degree.
    pub fn with_connectivity(mut self, m: usize) -> Self {
        self.connectivity = m.max(2);
        self
    }

    /// The default configuration with another graph element type.
    pub fn with_quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }

    /// The configuration with another way of sharing exact scans.
    pub fn with_scan_sharing(mut self, sharing: ScanSharing) -> Self {
        self.scan_sharing = sharing;
        self
    }
}

/// The size-grown search expansion at 100,000 vectors and fewer.
const MIN_EXPANSION: usize = 64;
/// The size-grown search expansion at 1,000,000 vectors and more.
const MAX_EXPANSION: usize = 192;
