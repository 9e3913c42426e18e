use std::collections::HashMap;

use super::*;

/// A version-1 .npy file as numpy writes it.
fn npy_bytes(descr: &str, fortran: bool, shape: (usize, usize), data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({}, {}), }}",
        if fortran { "True" } else { "False" },
        shape.0,
        shape.1
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn npy_float32_with_sidecar_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let npy = dir.path().join("emb.npy");
    std::fs::write(
        &npy,
        npy_bytes("<f4", false, (2, 3), &f32_bytes(&[1., 2., 3., 4., 5., 6.])),
    )
    .expect("write");
    std::fs::write(dir.path().join("emb.ids.txt"), "10\n20\n").expect("write ids");
    let table = EmbeddingTable::load(&npy).expect("loads");
    assert_eq!((table.len(), table.dim()), (2, 3));
    assert_eq!(table.get(20), Some(&[4.0, 5.0, 6.0][..]));
    assert_eq!(table.get(30), None);
}

#[test]
fn npy_float64_fortran_order_is_transposed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let npy = dir.path().join("e.npy");
    // Row-major [[1,2,3],[4,5,6]] stored column-major.
    let data: Vec<u8> = [1f64, 4., 2., 5., 3., 6.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&npy, npy_bytes("<f8", true, (2, 3), &data)).expect("write");
    std::fs::write(dir.path().join("e.ids"), "1\n2\n").expect("write ids");
    let table = EmbeddingTable::load(&npy).expect("loads");
    assert_eq!(table.get(1), Some(&[1.0, 2.0, 3.0][..]));
}

#[test]
fn npy_errors_name_the_file_and_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let npy = dir.path().join("bad.npy");
    std::fs::write(&npy, npy_bytes("<i8", false, (1, 1), &[0; 8])).expect("write");
    let ids = dir.path().join("bad.ids.txt");
    std::fs::write(&ids, "1\n").expect("write");
    let err = format!("{:#}", EmbeddingTable::load(&npy).expect_err("int dtype"));
    assert!(err.contains("bad.npy") && err.contains("<i8"), "{err}");

    std::fs::write(&npy, npy_bytes("<f4", false, (2, 1), &f32_bytes(&[1., 2.]))).expect("write");
    let err = format!(
        "{:#}",
        EmbeddingTable::load(&npy).expect_err("count mismatch")
    );
    assert!(err.contains("2 rows") && err.contains("1 ids"), "{err}");

    std::fs::write(&ids, "1\nx\n").expect("write");
    let err = format!("{:#}", EmbeddingTable::load(&npy).expect_err("bad id"));
    assert!(err.contains("line 2"), "{err}");

    std::fs::write(&ids, "1\n1\n").expect("write");
    let err = format!("{:#}", EmbeddingTable::load(&npy).expect_err("duplicate"));
    assert!(err.contains("twice"), "{err}");

    std::fs::remove_file(&ids).expect("rm");
    let err = format!("{:#}", EmbeddingTable::load(&npy).expect_err("no sidecar"));
    assert!(err.contains("no ids file"), "{err}");

    std::fs::write(&npy, npy_bytes("<f4", false, (4, 4), &f32_bytes(&[1.]))).expect("write");
    let err = format!(
        "{:#}",
        EmbeddingTable::load_npy(&npy, &ids).expect_err("no ids")
    );
    assert!(err.contains("bad.ids.txt"), "{err}");
}

#[test]
fn safetensors_with_metadata_ids_and_with_id_tensor() {
    use safetensors::{tensor::TensorView, Dtype};
    let dir = tempfile::tempdir().expect("tempdir");
    let values = f32_bytes(&[0.5, 1.5, 2.5, 3.5]);
    let view = TensorView::new(Dtype::F32, vec![2, 2], &values).expect("view");
    let meta = HashMap::from([("ids".to_string(), "[7, 8]".to_string())]);
    let bytes =
        safetensors::serialize([("embeddings", view.clone())], Some(meta)).expect("serialize");
    let path = dir.path().join("a.safetensors");
    std::fs::write(&path, bytes).expect("write");
    let table = EmbeddingTable::load(&path).expect("loads");
    assert_eq!(table.get(8), Some(&[2.5, 3.5][..]));

    let ids: Vec<u8> = [70i64, 80].iter().flat_map(|v| v.to_le_bytes()).collect();
    let id_view = TensorView::new(Dtype::I64, vec![2], &ids).expect("view");
    let bytes = safetensors::serialize([("embeddings", view.clone()), ("ids", id_view)], None)
        .expect("serialize");
    std::fs::write(&path, bytes).expect("write");
    assert_eq!(
        EmbeddingTable::load(&path).expect("loads").get(70),
        Some(&[0.5, 1.5][..])
    );

    let bytes = safetensors::serialize([("other", view)], None).expect("serialize");
    std::fs::write(&path, bytes).expect("write");
    let err = format!("{:#}", EmbeddingTable::load(&path).expect_err("no tensor"));
    assert!(
        err.contains("a.safetensors") && err.contains("`embeddings`"),
        "{err}"
    );
}

#[test]
fn half_precision_conversion() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert!(f16_to_f32(0x7c00).is_infinite());
}
