//! The benchmarks' synthetic vectors: fixed-seed, normalised, and clustered the way text
//! embeddings are (many topics, items of one topic near each other), so that approximate
//! indexes are measured on data with the structure they will meet, not on uniform noise, which
//! no embedding model produces. Clearly synthetic: every report that uses them says so.

/// splitmix64: a tiny fixed-seed generator, so every run and backend sees the same data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly Zipf over `n` ranks: small ranks are frequent.
    pub fn zipf(&mut self, n: usize) -> usize {
        let x = self.unit();
        ((n as f64).powf(x) as usize)
            .saturating_sub(1)
            .min(n.saturating_sub(1))
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in v {
            *x /= n;
        }
    }
}

/// Clustered unit vectors: `topics` random centres; each vector is a centre plus Gaussian
/// noise of the same expected length, normalised (cosine to its centre about 0.7, to another
/// item of its topic about 0.5, to other topics about 0).
#[derive(Clone, Debug)]
pub struct Clustered {
    dim: usize,
    centres: Vec<Vec<f32>>,
    rng: Rng,
}

impl Clustered {
    /// A generator of `dim`-dimensional vectors around `topics` centres, from `seed`.
    pub fn new(dim: usize, topics: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let centres = (0..topics.max(1))
            .map(|_| {
                let mut c: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
                normalise(&mut c);
                c
            })
            .collect();
        Clustered { dim, centres, rng }
    }

    /// The next vector (its topic drawn uniformly).
    pub fn next_vector(&mut self) -> Vec<f32> {
        let t = (self.rng.next_u64() % self.centres.len() as u64) as usize;
        let scale = 1.0 / (self.dim as f32).sqrt();
        let mut v: Vec<f32> = self.centres[t]
            .iter()
            .map(|c| c + self.rng.gauss() * scale)
            .collect();
        normalise(&mut v);
        v
    }

    /// Continues with another seed (same centres): queries drawn like the items, never equal
    /// to one.
    pub fn reseeded(&self, seed: u64) -> Self {
        Clustered {
            dim: self.dim,
            centres: self.centres.clone(),
            rng: Rng::new(seed),
        }
    }
}
