//! The shape of a Gatehouse API key, checked without any I/O: `sk_live_`, `sk_test_`,
//! `rk_live_` or `rk_test_`, 32 base62 characters, and a 6-character base62 CRC32 checksum of
//! those 32 — 46 characters in all.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIXES: [&str; 4] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"];
const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;

/// The checksum of a key's random part (Gatehouse computes its secrets' checksums with this
/// same function).
pub fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = u64::from(crc32fast::hash(random));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// `Ok` when `key` is shaped like a Gatehouse API key and its checksum holds.
pub fn check(key: &str) -> Result<(), &'static str> {
    let Some(body) = PREFIXES.iter().find_map(|p| key.strip_prefix(p)) else {
        return Err("not a Gatehouse API key (sk_live_, sk_test_, rk_live_, rk_test_)");
    };
    if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("an API key has 38 letters and digits after its prefix");
    }
    let (random, sum) = body.as_bytes().split_at(RANDOM_LEN);
    if checksum(random) != sum {
        return Err("the key's checksum does not match (a typo, or not a key)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_with_its_checksum_passes_and_one_changed_character_does_not() {
        let random = "a".repeat(RANDOM_LEN);
        let sum = String::from_utf8(checksum(random.as_bytes()).to_vec()).unwrap();
        let key = format!("rk_test_{random}{sum}");
        assert_eq!(check(&key), Ok(()));
        let typo = format!("rk_test_b{}{sum}", &random[1..]);
        assert!(check(&typo).is_err());
        assert!(check(&format!("pk_test_{random}{sum}")).is_err());
        assert!(check(&format!("rk_test_{random}{sum}x")).is_err());
    }
}
