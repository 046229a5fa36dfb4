//! [`PackedStrs`]: a few optional strings in one allocation.

/// `N` optional strings (`N` ≤ 32) kept one after the other in one allocation: what is read
/// together, for thousands of objects on every plan, is one cache miss away instead of one per
/// string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedStrs<const N: usize> {
    /// The strings present, one after the other.
    text: Box<str>,
    /// Where each string ends in `text`.
    ends: [u32; N],
    /// Which strings are present (bit `i` for string `i`).
    present: u32,
}

impl<const N: usize> PackedStrs<N> {
    /// The strings; `None` when their total length does not fit a `u32` (callers keep such
    /// values another way).
    pub fn new(fields: [Option<&str>; N]) -> Option<Self> {
        const { assert!(N <= 32, "at most 32 strings") };
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut ends = [0u32; N];
        let mut present = 0u32;
        for (i, field) in fields.iter().enumerate() {
            if let Some(field) = field {
                text.push_str(field);
                present |= 1 << i;
            }
            ends[i] = u32::try_from(text.len()).ok()?;
        }
        Some(Self {
            text: text.into_boxed_str(),
            ends,
            present,
        })
    }

    /// String `i`, if present.
    pub fn get(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..self.ends[i] as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_come_back_as_given() {
        let cases: [[Option<&str>; 4]; 4] = [
            [Some("v1"), Some("ConfigMap"), None, Some("a")],
            [None, None, None, None],
            [Some(""), None, Some("ünï"), Some("")],
            [Some("a"), Some("b"), Some("c"), Some("d")],
        ];
        for fields in cases {
            let packed = PackedStrs::new(fields).expect("short");
            let back: Vec<Option<&str>> = (0..4).map(|i| packed.get(i)).collect();
            assert_eq!(back, fields);
        }
    }
}
