//! ONNX export of a trained MLP, for deployment with any ONNX runtime: `images [N, 28, 28]` (or
//! `[N, 784]`) float32 in [0, 1], normalised as fmnist normalises (pixel * 1/255), to `probabilities
//! [N, classes]`, through Reshape, MatMul, Add, Relu and Softmax (opset 13). The protobuf messages are the
//! subset of onnx.proto the graph needs, encoded by prost (field numbers as in onnx.proto; proto2
//! parsers read these proto3-style encodings). Used by `fmnist export`. Tested below (the graph's
//! structure, decoded back) and by tests/onnx_export.rs (onnxruntime's probabilities against fmnist's).

use prost::Message;

use crate::data::{ClassNames, IMAGE_SIDE};
use crate::model::MlpSpec;

/// ONNX IR version 8 (ONNX 1.10+), opset 13: every runtime of the last years reads it.
const IR_VERSION: i64 = 8;
const OPSET: i64 = 13;
const FLOAT: i32 = 1;
const INT64: i32 = 7;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// AttributeType: INT = 2.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    /// Little-endian values, row-major.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    /// The `tensor_type` case of TypeProto's oneof.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorType>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorType {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// One dimension: a size, or a named free one (the cases of Dimension's oneof; one is set).
#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// The shape of the exported model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// `[N, 28, 28]`, as the tutorial's `test_images`.
    Image,
    /// `[N, 784]`, flattened.
    Flat,
}

fn tensor_value(name: &str, dims: &[Dimension], doc: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorType {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
        }),
        doc_string: doc.into(),
    }
}

fn size(n: usize) -> Dimension {
    Dimension {
        dim_value: Some(n as i64),
        dim_param: None,
    }
}

fn batch() -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        attribute: Vec::new(),
    }
}

fn floats(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The ONNX model of `spec` with `params` (flat, `spec.layout()` order), its classes named `names`.
pub fn model(spec: &MlpSpec, params: &[f32], names: &ClassNames, input: InputShape) -> ModelProto {
    let layout = spec.layout();
    let mut nodes = Vec::new();
    let mut init = Vec::new();
    let (inputs, mut prev) = match input {
        InputShape::Image => {
            init.push(TensorProto {
                dims: vec![2],
                data_type: INT64,
                name: "flat_shape".into(),
                raw_data: [-1i64, spec.inputs as i64]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            });
            nodes.push(node("Reshape", &["images", "flat_shape"], "flat"));
            (
                vec![batch(), size(IMAGE_SIDE), size(IMAGE_SIDE)],
                "flat".to_string(),
            )
        }
        InputShape::Flat => (vec![batch(), size(spec.inputs)], "images".to_string()),
    };
    let last = layout.layers.len() - 1;
    for (i, l) in layout.layers.iter().enumerate() {
        let (w, b) = (format!("layers.{i}.weight"), format!("layers.{i}.bias"));
        init.push(floats(
            &w,
            &[l.fan_in, l.fan_out],
            &params[l.weight_range()],
        ));
        init.push(floats(&b, &[l.fan_out], &params[l.bias_range()]));
        let (mm, z) = (format!("dense_{i}.matmul"), format!("dense_{i}"));
        nodes.push(node("MatMul", &[&prev, &w], &mm));
        nodes.push(node("Add", &[&mm, &b], &z));
        prev = if i < last {
            let a = format!("dense_{i}.relu");
            nodes.push(node("Relu", &[&z], &a));
            a
        } else {
            z
        };
    }
    let mut softmax = node("Softmax", &[&prev], "probabilities");
    softmax.attribute.push(AttributeProto {
        name: "axis".into(),
        i: -1,
        r#type: 2,
    });
    nodes.push(softmax);
    let names_json = serde_json::to_string(names).expect("names serialise");
    let graph = GraphProto {
        node: nodes,
        name: format!("fmnist {}", spec.describe()),
        initializer: init,
        doc_string: "Flatten -> Dense (ReLU) ... -> Dense -> Softmax, as trained by fmnist".into(),
        input: vec![tensor_value(
            "images",
            &inputs,
            "grey images, float32 in [0, 1]: pixel values times 1/255",
        )],
        output: vec![tensor_value(
            "probabilities",
            &[batch(), size(spec.outputs)],
            &format!("class probabilities, classes {names_json}"),
        )],
    };
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "fmnist".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} classifier exported by fmnist", spec.describe()),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: "class_names".into(),
            value: names_json,
        }],
    }
}

/// The encoded `.onnx` file of [`model`].
pub fn encode(spec: &MlpSpec, params: &[f32], names: &ClassNames, input: InputShape) -> Vec<u8> {
    model(spec, params, names, input).encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_decodes_back_with_its_ops_weights_and_names() {
        let spec = MlpSpec::fashion(&[5, 3]).unwrap();
        let params: Vec<f32> = (0..spec.layout().total).map(|i| i as f32 * 0.5).collect();
        let bytes = encode(&spec, &params, &ClassNames::default(), InputShape::Image);
        let m = ModelProto::decode(&bytes[..]).unwrap();
        assert_eq!(
            (m.ir_version, m.opset_import[0].version),
            (IR_VERSION, OPSET)
        );
        let g = m.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Reshape", "MatMul", "Add", "Relu", "MatMul", "Add", "Relu", "MatMul", "Add",
                "Softmax"
            ]
        );
        let w1 = g
            .initializer
            .iter()
            .find(|t| t.name == "layers.1.weight")
            .unwrap();
        assert_eq!(w1.dims, [5, 3]);
        let l1 = spec.layout().layers[1];
        let got: Vec<f32> = w1
            .raw_data
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, params[l1.weight_range()]);
        assert_eq!(m.metadata_props[0].key, "class_names");
        assert!(m.metadata_props[0].value.contains("Ankle boot"));
        let flat = ModelProto::decode(
            &encode(&spec, &params, &ClassNames::default(), InputShape::Flat)[..],
        )
        .unwrap();
        assert_eq!(flat.graph.unwrap().node[0].op_type, "MatMul");
    }
}
