//! Which device ids the simulated factory knows.

use std::collections::HashSet;

/// Longest device id the contract allows, in bytes.
const MAX_DEVICE_ID_BYTES: usize = 64;

/// Whether `device` follows the contract's rule for device ids,
/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
pub fn is_valid_device_id(device: &str) -> bool {
    let bytes = device.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_DEVICE_ID_BYTES
                && first.is_ascii_alphanumeric()
                && rest
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(byte))
        }
        None => false,
    }
}

/// The devices that exist: a fixed list, or every well-formed id.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceCatalog {
    /// `None` when every well-formed id exists.
    listed: Option<HashSet<String>>,
}

impl DeviceCatalog {
    /// A catalog of `devices`, or of every well-formed id when it is empty.
    pub(crate) fn new(devices: &[String]) -> Self {
        let listed = (!devices.is_empty()).then(|| devices.iter().cloned().collect());
        Self { listed }
    }

    /// Whether `device` exists; a malformed id never does.
    pub(crate) fn contains(&self, device: &str) -> bool {
        is_valid_device_id(device)
            && self
                .listed
                .as_ref()
                .is_none_or(|listed| listed.contains(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_follow_the_contract_rule() {
        let longest = format!("a{}", "b".repeat(63));
        for device in ["a", "press-07", "Z.9_x-1", "0", longest.as_str()] {
            assert!(is_valid_device_id(device), "{device:?}");
        }
        let too_long = format!("a{}", "b".repeat(64));
        for device in [
            "",
            "-press",
            ".hidden",
            "../admin",
            "press 07",
            "prèss",
            "a/b",
            "a%2Fb",
            too_long.as_str(),
        ] {
            assert!(!is_valid_device_id(device), "{device:?}");
        }
    }

    #[test]
    fn empty_catalog_holds_every_well_formed_id() {
        let catalog = DeviceCatalog::new(&[]);
        assert!(catalog.contains("anything-1"));
        assert!(!catalog.contains("../admin"));
    }

    #[test]
    fn listed_catalog_holds_only_its_devices() {
        let catalog = DeviceCatalog::new(&["press-07".to_owned()]);
        assert!(catalog.contains("press-07"));
        assert!(!catalog.contains("press-08"));
    }
}
