//! Reading JSON the way Go wrote it: the API server, the SDK's host and
//! hand-written kwctl fixtures all come from Go's `encoding/json`, which reads
//! `null` into a string, a map or a struct as its zero value.

use serde::Deserialize;

/// `null` as the type's default; anything else as usual.
pub fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(de).map(Option::unwrap_or_default)
}
