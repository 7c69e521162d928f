//! Element types `chunkwise` reads and writes, and the conversions the
//! kernels need. `Dtype` is the runtime tag; `Element` the compile-time type.

use std::fmt;

/// Runtime tag for a supported numeric element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
}

impl Dtype {
    /// Every supported type.
    pub const ALL: [Dtype; 10] = [
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::U64,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Short name (`f64`, `u8`, ...), as used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::I8 => "i8",
            Dtype::I16 => "i16",
            Dtype::I32 => "i32",
            Dtype::I64 => "i64",
            Dtype::U8 => "u8",
            Dtype::U16 => "u16",
            Dtype::U32 => "u32",
            Dtype::U64 => "u64",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }

    /// Parse a short name.
    pub fn parse(s: &str) -> Option<Dtype> {
        Dtype::ALL
            .iter()
            .copied()
            .find(|d| d.name() == s.trim().to_ascii_lowercase())
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// Parse a NumPy type string such as `<f8`, `>i4`, `|u1` or `=f4`
    /// (`=` means the writer's native order, taken as little-endian, which is
    /// what every platform NumPy writes `.npy` on today reports as `<` anyway).
    /// Returns the element type and whether it is big-endian.
    pub fn parse_numpy_descr(descr: &str) -> Result<(Dtype, bool), String> {
        let bad = |why: &str| format!("unsupported dtype '{descr}': {why}");
        let b = descr.as_bytes();
        if b.len() < 3 {
            return Err(bad("expected e.g. '<f8'"));
        }
        let big = match b[0] {
            b'<' | b'=' | b'|' => false,
            b'>' => true,
            _ => return Err(bad("expected a byte-order character <, >, = or |")),
        };
        let size: usize = descr[2..]
            .parse()
            .map_err(|_| bad("size is not a number"))?;
        let dtype = match (b[1], size) {
            (b'f', 4) => Dtype::F32,
            (b'f', 8) => Dtype::F64,
            (b'i', 1) => Dtype::I8,
            (b'i', 2) => Dtype::I16,
            (b'i', 4) => Dtype::I32,
            (b'i', 8) => Dtype::I64,
            (b'u', 1) => Dtype::U8,
            (b'u', 2) => Dtype::U16,
            (b'u', 4) => Dtype::U32,
            (b'u', 8) => Dtype::U64,
            _ => {
                return Err(bad(
                    "only f4, f8, i1..i8 and u1..u8 (numeric, non-complex) are supported",
                ));
            }
        };
        Ok((dtype, big && size > 1))
    }

    /// The NumPy type string of this type (`<f8`, `>i4`, `|u1`, ...).
    pub fn numpy_descr(self, big_endian: bool) -> String {
        let kind = match self {
            Dtype::F32 | Dtype::F64 => 'f',
            Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => 'i',
            _ => 'u',
        };
        let order = match (self.size(), big_endian) {
            (1, _) => '|',
            (_, true) => '>',
            (_, false) => '<',
        };
        format!("{order}{kind}{}", self.size())
    }

    /// NumPy's name of this type (`float64`, `int32`, …), which is also the
    /// Zarr v3 `data_type` name.
    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// True for floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A numeric element the kernels can reduce and `generate` can write.
pub trait Element: Copy + Send + Sync + Default + PartialOrd + 'static {
    /// The runtime tag of this type.
    const DTYPE: Dtype;
    /// Widen to f64 (exact for every type except i64/u64 beyond 2^53).
    fn to_f64(self) -> f64;
    /// Widen to i128 (exact for integers; floats truncate and are not used this way).
    fn to_i128(self) -> i128;
    /// Convert from f64, rounding to nearest and saturating for integers.
    fn from_f64(v: f64) -> Self;
    /// True for a NaN value (always false for integers).
    fn is_nan(self) -> bool;
}

macro_rules! int_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: Dtype = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v.round() as $t
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}

int_element!(i8, Dtype::I8);
int_element!(i16, Dtype::I16);
int_element!(i32, Dtype::I32);
int_element!(i64, Dtype::I64);
int_element!(u8, Dtype::U8);
int_element!(u16, Dtype::U16);
int_element!(u32, Dtype::U32);
int_element!(u64, Dtype::U64);

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn to_i128(self) -> i128 {
        self as i128
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn to_i128(self) -> i128 {
        self as i128
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Call `$body` with the type alias `$T` bound to the Rust type of `$dtype`.
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::element::Dtype::I8 => {
                type $T = i8;
                $body
            }
            $crate::element::Dtype::I16 => {
                type $T = i16;
                $body
            }
            $crate::element::Dtype::I32 => {
                type $T = i32;
                $body
            }
            $crate::element::Dtype::I64 => {
                type $T = i64;
                $body
            }
            $crate::element::Dtype::U8 => {
                type $T = u8;
                $body
            }
            $crate::element::Dtype::U16 => {
                type $T = u16;
                $body
            }
            $crate::element::Dtype::U32 => {
                type $T = u32;
                $body
            }
            $crate::element::Dtype::U64 => {
                type $T = u64;
                $body
            }
            $crate::element::Dtype::F32 => {
                type $T = f32;
                $body
            }
            $crate::element::Dtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
