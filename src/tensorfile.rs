//! A safetensors writer whose bytes depend only on its input: tensors in the order given, metadata in
//! the order given (the `safetensors` crate takes metadata as a `HashMap`, whose order changes from one
//! process to the next, so the same weights got a different sha256 every run). The files are read back
//! with the `safetensors` crate. Tested here and by tests/checkpoint.rs.

/// One F32 tensor: its name, shape and data (row-major).
pub struct Tensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

/// The bytes of a safetensors file: an 8-byte little-endian header length, the JSON header
/// (`__metadata__` first, then the tensors with their offsets, padded with spaces to 8 bytes), then the
/// tensors' little-endian data back to back.
pub fn serialize(tensors: &[Tensor<'_>], metadata: &[(&str, String)]) -> Vec<u8> {
    let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut entries = Vec::with_capacity(tensors.len() + 1);
    if !metadata.is_empty() {
        let fields: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v)))
            .collect();
        entries.push(format!("\"__metadata__\":{{{}}}", fields.join(",")));
    }
    let mut offset = 0usize;
    for t in tensors {
        debug_assert_eq!(t.shape.iter().product::<usize>(), t.data.len());
        let end = offset + 4 * t.data.len();
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        entries.push(format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json(&t.name),
            shape.join(",")
        ));
        offset = end;
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for t in tensors {
        for x in t.data {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn the_safetensors_crate_reads_what_is_written_and_order_is_kept() {
        let (a, b) = ([1.0f32, -2.5, 3.0, 4.0, 5.0, 6.0], [7.0f32]);
        let tensors = [
            Tensor {
                name: "z.first".into(),
                shape: vec![2, 3],
                data: &a,
            },
            Tensor {
                name: "a.second".into(),
                shape: vec![1],
                data: &b,
            },
        ];
        let meta = [
            ("zeta", "1".to_string()),
            ("alpha", "\"quoted\"".to_string()),
        ];
        let bytes = serialize(&tensors, &meta);
        assert_eq!(bytes, serialize(&tensors, &meta));
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
        assert!(header.find("zeta").unwrap() < header.find("alpha").unwrap());
        assert!(header.find("z.first").unwrap() < header.find("a.second").unwrap());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("z.first").unwrap();
        assert_eq!(t.shape(), [2, 3]);
        assert_eq!(t.data(), bytemuck::cast_slice::<f32, u8>(&a));
        assert_eq!(st.tensor("a.second").unwrap().data(), 7.0f32.to_le_bytes());
        let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = m.metadata().clone().unwrap();
        assert_eq!(m["alpha"], "\"quoted\"");
        assert_eq!(m["zeta"], "1");
    }
}
