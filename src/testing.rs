//! Helpers shared by the unit tests of several modules (compiled only under `cfg(test)`). It owns nothing
//! of the product; it sits at the bottom of the dependency table so that any module's tests may use it.

/// xorshift64* test PRNG: deterministic inputs for property-style tests, with no crate to pull in.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn printable(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b' ' + (self.next() % 95) as u8).collect()
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
