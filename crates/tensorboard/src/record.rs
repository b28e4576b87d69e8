//! TFRecord framing: `u64` length (little-endian), masked CRC-32C of the length, the
//! payload, masked CRC-32C of the payload.

/// TFRecord's masking of a CRC-32C, so that a CRC of data that contains CRCs stays
/// well distributed.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `payload` framed as one record.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_known_vectors() {
        // CRC-32C check value and the RFC 3720 (iSCSI) test vectors.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c::crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c::crc32c(&ascending), 0x46dd_794e);
        // The masks of those, ((crc >> 15) | (crc << 17)) + 0xa282ead8, worked out by hand.
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(&[0u8; 32]), 0x0fd7_fffa);
        assert_eq!(masked_crc32c(&[0xffu8; 32]), 0xf909_b029);
        assert_eq!(masked_crc32c(&ascending), 0x951f_7892);
    }

    #[test]
    fn frames_length_checksums_and_payload() {
        let record = frame(b"abc");
        assert_eq!(record.len(), 8 + 4 + 3 + 4);
        assert_eq!(&record[..8], &3u64.to_le_bytes());
        assert_eq!(
            &record[8..12],
            &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes()
        );
        assert_eq!(&record[12..15], b"abc");
        assert_eq!(&record[15..], &masked_crc32c(b"abc").to_le_bytes());
    }
}
