//! The scenario file as written: serde types that mirror the TOML keys one to one.
//!
//! These types only check the file's *shape*: which keys exist, and whether each value is a
//! string, a number, a table or an array. Every value that a later check may reject is
//! wrapped in [`Spanned`] so the error can point at it. Numbers are read as [`Int`] (any
//! integer TOML can hold) or [`Num`] (an integer or a float) and range-checked in
//! `validate`, so a negative or huge number gets a message that names the allowed range
//! instead of a type error.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// An integer as written in the file, before its range is checked.
///
/// TOML integers are 64-bit signed, but the parser hands larger literals to serde as
/// `i128`; keeping them lets `validate` say "must be at most …, got 99999999999999999999".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Int(pub i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntVisitor)
    }
}

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = Int;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
        Ok(Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
        Ok(Int(v))
    }
}

/// A number that may be written as an integer (`5000`) or a float (`5000.0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num(v as f64))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Num, E> {
        Ok(Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num(v))
    }
}

/// A string-valued key with a fixed set of values: an enum, its `name()` as written in the
/// file, and a `Deserialize` whose errors list every allowed value, also when the value is
/// not a string at all (serde's derive says only "wanted string or table" then).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum $name {
            $($variant),+
        }

        impl $name {
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name written in the file.
            #[allow(dead_code)] // not every enum's name appears in a message
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;

                impl Visitor<'_> for V {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "one of {}", quoted($name::NAMES))
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        match v {
                            $($text => Ok($name::$variant),)+
                            _ => Err(E::unknown_variant(v, $name::NAMES)),
                        }
                    }
                }

                deserializer.deserialize_str(V)
            }
        }
    };
}

/// "`a`, `b`", as serde writes lists of allowed values.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub seed: Option<Spanned<Int>>,
    pub cores: Option<Spanned<Int>>,
    #[serde(default)]
    pub stage: Vec<Spanned<RawStage>>,
    #[serde(default)]
    pub subscription: Vec<Spanned<RawSubscription>>,
}

/// One `[[stage]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    pub name: Spanned<String>,
    pub kind: Spanned<RawKind>,
    pub source: Option<Spanned<RawSource>>,
    pub dispatcher: Option<Spanned<RawDispatcher>>,
    pub partitions: Option<Spanned<Int>>,
    pub hash: Option<Spanned<RawHash>>,
    pub hash_modulus: Option<Spanned<Int>>,
    pub shuffle_demands_on_first_dispatch: Option<Spanned<bool>>,
    pub on_missing_partition: Option<Spanned<RawOnMissing>>,
    pub buffer_size: Option<Spanned<Int>>,
    pub buffer_keep: Option<Spanned<RawKeep>>,
    pub demand: Option<Spanned<RawDemandMode>>,
    pub forward_at_us: Option<Spanned<Int>>,
    pub per_event: Option<Spanned<RawDist>>,
    pub per_batch: Option<Spanned<RawDist>>,
    #[serde(default)]
    pub fault: Vec<Spanned<RawFault>>,
}

string_enum! {
    /// `kind`.
    RawKind {
        Producer = "producer",
        ProducerConsumer = "producer_consumer",
        Consumer = "consumer",
        ConsumerPool = "consumer_pool",
    }
}

string_enum! {
    /// `dispatcher`.
    RawDispatcher {
        Demand = "demand",
        Broadcast = "broadcast",
        Partition = "partition",
    }
}

string_enum! {
    /// `hash`.
    RawHash { Rem = "rem", Mix = "mix" }
}

string_enum! {
    /// `on_missing_partition`.
    RawOnMissing { Hold = "hold", Drop = "drop" }
}

string_enum! {
    /// `buffer_keep`.
    RawKeep { Last = "last", First = "first" }
}

string_enum! {
    /// `demand`.
    RawDemandMode { Forward = "forward", Accumulate = "accumulate" }
}

string_enum! {
    /// `cancel`.
    RawCancel {
        Permanent = "permanent",
        Transient = "transient",
        Temporary = "temporary",
    }
}

/// `source = { … }`: exactly one key may be present (checked in `validate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub range: Option<Spanned<Vec<Spanned<Int>>>>,
    pub counter: Option<Spanned<Int>>,
    pub poisson: Option<Spanned<RawPoisson>>,
    pub bursts: Option<Spanned<RawBursts>>,
    pub script: Option<Spanned<Vec<Spanned<RawScriptBatch>>>>,
}

/// `poisson = { … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoisson {
    pub rate_per_s: Spanned<Num>,
    pub batch: Option<Spanned<Int>>,
    pub first_id: Option<Spanned<Int>>,
    pub total: Option<Spanned<Int>>,
}

/// `bursts = { … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBursts {
    pub every_us: Spanned<Int>,
    pub size: Spanned<Int>,
    pub count: Option<Spanned<Int>>,
    pub first_id: Option<Spanned<Int>>,
}

/// One entry of `script = [ … ]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScriptBatch {
    pub at_us: Spanned<Int>,
    pub first: Spanned<Int>,
    pub last: Spanned<Int>,
}

/// `{ dist = …, … }`: which keys go with which `dist` is checked in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDist {
    pub dist: Spanned<RawDistKind>,
    pub ns: Option<Spanned<Int>>,
    pub min_ns: Option<Spanned<Int>>,
    pub max_ns: Option<Spanned<Int>>,
    pub mean_ns: Option<Spanned<Num>>,
    pub median_ns: Option<Spanned<Num>>,
    pub sigma: Option<Spanned<Num>>,
}

string_enum! {
    /// `dist`.
    RawDistKind {
        Fixed = "fixed",
        Uniform = "uniform",
        Exp = "exp",
        Lognormal = "lognormal",
    }
}

/// One `[[stage.fault]]` table: exactly one trigger (checked in `validate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub crash_after_events: Option<Spanned<Int>>,
    pub crash_at_us: Option<Spanned<Int>>,
    pub restart_after_us: Option<Spanned<Int>>,
    pub slow_at_us: Option<Spanned<Int>>,
    pub factor: Option<Spanned<Num>>,
}

/// One `[[subscription]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscription {
    pub producer: Spanned<String>,
    pub consumer: Spanned<String>,
    pub max_demand: Option<Spanned<Int>>,
    pub min_demand: Option<Spanned<Int>>,
    pub cancel: Option<Spanned<RawCancel>>,
    pub partition: Option<Spanned<Int>>,
    pub selector: Option<Spanned<RawSelector>>,
    pub latency: Option<Spanned<RawDist>>,
}

/// `selector = { modulus, remainder }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelector {
    pub modulus: Spanned<Int>,
    pub remainder: Option<Spanned<Int>>,
}
