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

/// A struct read as both `validate_settings` and `validate` read settings: a
/// JSON object, or `null` for the defaults, as kwctl sends when none are
/// given. serde alone would also read a struct from a JSON list, by position.
pub fn object_or_null<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct ObjectOrNull<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> serde::de::Visitor<'de> for ObjectOrNull<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_unit<E>(self) -> Result<T, E> {
            Ok(T::default())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    de.deserialize_any(ObjectOrNull(std::marker::PhantomData))
}
