//! Reads the Kubernetes protobuf wire format kubectl uses for typed writes
//! (`Content-Type: application/vnd.kubernetes.protobuf`): the `k8s\0` magic, the
//! `runtime.Unknown` envelope, and the core/v1 and apps/v1 messages served here, turned into the JSON
//! the rest of the server works with. Answers are always JSON, which kubectl also accepts.
//! Fields outside the schemas below are skipped (the types' generated.proto numbers).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

#[derive(Clone, Copy)]
enum T {
    Str,
    Bytes,
    Int,
    Bool,
    Msg(&'static [F]),
    MapStr,
    MapBytes,
    MapQuantity,
    Time,
}

#[derive(Clone, Copy)]
struct F(u64, &'static str, T, bool);

const TYPE_META: &[F] = &[F(1, "apiVersion", T::Str, false), F(2, "kind", T::Str, false)];
const UNKNOWN: &[F] =
    &[F(1, "typeMeta", T::Msg(TYPE_META), false), F(2, "raw", T::Bytes, false), F(4, "contentType", T::Str, false)];
const OWNER: &[F] = &[
    F(1, "kind", T::Str, false),
    F(3, "name", T::Str, false),
    F(4, "uid", T::Str, false),
    F(5, "apiVersion", T::Str, false),
    F(6, "controller", T::Bool, false),
    F(7, "blockOwnerDeletion", T::Bool, false),
];
const META: &[F] = &[
    F(1, "name", T::Str, false),
    F(2, "generateName", T::Str, false),
    F(3, "namespace", T::Str, false),
    F(5, "uid", T::Str, false),
    F(6, "resourceVersion", T::Str, false),
    F(7, "generation", T::Int, false),
    F(8, "creationTimestamp", T::Time, false),
    F(11, "labels", T::MapStr, false),
    F(12, "annotations", T::MapStr, false),
    F(13, "ownerReferences", T::Msg(OWNER), true),
    F(14, "finalizers", T::Str, true),
];
const NAMESPACE_SPEC: &[F] = &[F(1, "finalizers", T::Str, true)];
const NAMESPACE: &[F] = &[F(1, "metadata", T::Msg(META), false), F(2, "spec", T::Msg(NAMESPACE_SPEC), false)];
const SECRET: &[F] = &[
    F(1, "metadata", T::Msg(META), false),
    F(2, "data", T::MapBytes, false),
    F(3, "type", T::Str, false),
    F(4, "stringData", T::MapStr, false),
    F(5, "immutable", T::Bool, false),
];
const OBJECT_REF: &[F] = &[
    F(1, "kind", T::Str, false),
    F(2, "namespace", T::Str, false),
    F(3, "name", T::Str, false),
    F(4, "uid", T::Str, false),
    F(5, "apiVersion", T::Str, false),
];
const LOCAL_REF: &[F] = &[F(1, "name", T::Str, false)];
const SERVICE_ACCOUNT: &[F] = &[
    F(1, "metadata", T::Msg(META), false),
    F(2, "secrets", T::Msg(OBJECT_REF), true),
    F(3, "imagePullSecrets", T::Msg(LOCAL_REF), true),
    F(4, "automountServiceAccountToken", T::Bool, false),
];
const CONFIG_MAP: &[F] = &[
    F(1, "metadata", T::Msg(META), false),
    F(2, "data", T::MapStr, false),
    F(3, "binaryData", T::MapBytes, false),
    F(4, "immutable", T::Bool, false),
];
const ENV: &[F] = &[F(1, "name", T::Str, false), F(2, "value", T::Str, false)];
const PORT: &[F] = &[
    F(1, "name", T::Str, false),
    F(2, "hostPort", T::Int, false),
    F(3, "containerPort", T::Int, false),
    F(4, "protocol", T::Str, false),
];
const RESOURCES: &[F] = &[F(1, "limits", T::MapQuantity, false), F(2, "requests", T::MapQuantity, false)];
const MOUNT: &[F] = &[
    F(1, "name", T::Str, false),
    F(2, "readOnly", T::Bool, false),
    F(3, "mountPath", T::Str, false),
    F(4, "subPath", T::Str, false),
];
const CONTAINER: &[F] = &[
    F(1, "name", T::Str, false),
    F(2, "image", T::Str, false),
    F(3, "command", T::Str, true),
    F(4, "args", T::Str, true),
    F(5, "workingDir", T::Str, false),
    F(6, "ports", T::Msg(PORT), true),
    F(7, "env", T::Msg(ENV), true),
    F(8, "resources", T::Msg(RESOURCES), false),
    F(9, "volumeMounts", T::Msg(MOUNT), true),
    F(13, "terminationMessagePath", T::Str, false),
    F(14, "imagePullPolicy", T::Str, false),
    F(16, "stdin", T::Bool, false),
    F(17, "stdinOnce", T::Bool, false),
    F(18, "tty", T::Bool, false),
    F(20, "terminationMessagePolicy", T::Str, false),
];
const POD_SPEC: &[F] = &[
    F(2, "containers", T::Msg(CONTAINER), true),
    F(3, "restartPolicy", T::Str, false),
    F(4, "terminationGracePeriodSeconds", T::Int, false),
    F(5, "activeDeadlineSeconds", T::Int, false),
    F(6, "dnsPolicy", T::Str, false),
    F(7, "nodeSelector", T::MapStr, false),
    F(8, "serviceAccountName", T::Str, false),
    F(9, "serviceAccount", T::Str, false),
    F(10, "nodeName", T::Str, false),
    F(11, "hostNetwork", T::Bool, false),
    F(15, "imagePullSecrets", T::Msg(LOCAL_REF), true),
    F(16, "hostname", T::Str, false),
    F(19, "schedulerName", T::Str, false),
    F(20, "initContainers", T::Msg(CONTAINER), true),
    F(21, "automountServiceAccountToken", T::Bool, false),
    F(24, "priorityClassName", T::Str, false),
    F(30, "enableServiceLinks", T::Bool, false),
];
const POD: &[F] = &[F(1, "metadata", T::Msg(META), false), F(2, "spec", T::Msg(POD_SPEC), false)];
// apps/v1 (k8s.io/api/apps/v1/generated.proto); `kubectl create deployment` sends these.
const SELECTOR_REQUIREMENT: &[F] =
    &[F(1, "key", T::Str, false), F(2, "operator", T::Str, false), F(3, "values", T::Str, true)];
const LABEL_SELECTOR: &[F] =
    &[F(1, "matchLabels", T::MapStr, false), F(2, "matchExpressions", T::Msg(SELECTOR_REQUIREMENT), true)];
const POD_TEMPLATE: &[F] = &[F(1, "metadata", T::Msg(META), false), F(2, "spec", T::Msg(POD_SPEC), false)];
const STRATEGY: &[F] = &[F(1, "type", T::Str, false)];
const DEPLOYMENT_SPEC: &[F] = &[
    F(1, "replicas", T::Int, false),
    F(2, "selector", T::Msg(LABEL_SELECTOR), false),
    F(3, "template", T::Msg(POD_TEMPLATE), false),
    F(4, "strategy", T::Msg(STRATEGY), false),
    F(5, "minReadySeconds", T::Int, false),
    F(6, "revisionHistoryLimit", T::Int, false),
    F(7, "paused", T::Bool, false),
    F(9, "progressDeadlineSeconds", T::Int, false),
];
const DEPLOYMENT: &[F] = &[F(1, "metadata", T::Msg(META), false), F(2, "spec", T::Msg(DEPLOYMENT_SPEC), false)];
const REPLICA_SET_SPEC: &[F] = &[
    F(1, "replicas", T::Int, false),
    F(2, "selector", T::Msg(LABEL_SELECTOR), false),
    F(3, "template", T::Msg(POD_TEMPLATE), false),
    F(4, "minReadySeconds", T::Int, false),
];
const REPLICA_SET: &[F] = &[F(1, "metadata", T::Msg(META), false), F(2, "spec", T::Msg(REPLICA_SET_SPEC), false)];

fn schema(kind: &str) -> Option<&'static [F]> {
    Some(match kind {
        "Namespace" => NAMESPACE,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "ConfigMap" => CONFIG_MAP,
        "Pod" => POD,
        "Deployment" => DEPLOYMENT,
        "ReplicaSet" => REPLICA_SET,
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.i.checked_add(len)?;
        let slice = self.b.get(self.i..end)?;
        self.i = end;
        Some(slice)
    }

    /// Skips a field of the given wire type.
    fn skip(&mut self, wire: u64) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.i += 8;
                Some(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.i += 4;
                Some(())
            }
            _ => None,
        }
    }
}

fn text(bytes: &[u8]) -> Value {
    json!(String::from_utf8_lossy(bytes))
}

fn map_entry(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut r = Reader { b: bytes, i: 0 };
    let (mut key, mut value) = (String::new(), Vec::new());
    while r.i < bytes.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => key = String::from_utf8_lossy(r.bytes()?).into_owned(),
            (2, 2) => value = r.bytes()?.to_vec(),
            (_, wire) => r.skip(wire)?,
        }
    }
    Some((key, value))
}

fn decode(bytes: &[u8], fields: &[F]) -> Option<Value> {
    let mut out = Map::new();
    let mut r = Reader { b: bytes, i: 0 };
    while r.i < bytes.len() {
        let tag = r.varint()?;
        let (number, wire) = (tag >> 3, tag & 7);
        let Some(F(_, name, ty, repeated)) = fields.iter().find(|f| f.0 == number).copied() else {
            r.skip(wire)?;
            continue;
        };
        let value = match ty {
            T::Int => json!(r.varint()? as i64),
            T::Bool => json!(r.varint()? != 0),
            T::Str => text(r.bytes()?),
            T::Bytes => json!(STANDARD.encode(r.bytes()?)),
            T::Msg(inner) => decode(r.bytes()?, inner)?,
            T::Time => {
                let inner = decode(r.bytes()?, &[F(1, "seconds", T::Int, false)])?;
                let at = OffsetDateTime::from_unix_timestamp(inner["seconds"].as_i64().unwrap_or(0)).ok()?;
                json!(super::store::k8s_time(at))
            }
            T::MapStr | T::MapBytes | T::MapQuantity => {
                let (key, raw) = map_entry(r.bytes()?)?;
                let value = match ty {
                    T::MapBytes => json!(STANDARD.encode(&raw)),
                    T::MapQuantity => decode(&raw, &[F(1, "string", T::Str, false)])?["string"].clone(),
                    _ => text(&raw),
                };
                let map = out.entry(name).or_insert_with(|| json!({}));
                map[key.as_str()] = value;
                continue;
            }
        };
        // gogo protobuf writes every non-pointer field, zero values included; Go's JSON
        // leaves those out (`omitempty`), and so does the object the server keeps.
        if !repeated && omitted_zero(name, &value) {
            continue;
        }
        if repeated {
            if let Value::Array(list) = out.entry(name).or_insert_with(|| json!([])) {
                list.push(value);
            }
        } else {
            out.insert(name.to_string(), value);
        }
    }
    Some(Value::Object(out))
}

/// Non-pointer fields whose zero value Go's JSON omits (pointer fields are only on the wire
/// when set, so their zero values stay).
const NON_POINTER_ZEROS: &[&str] =
    &["hostPort", "generation", "minReadySeconds", "stdin", "stdinOnce", "tty", "hostNetwork", "readOnly", "paused"];

fn omitted_zero(name: &str, value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0) && NON_POINTER_ZEROS.contains(&name),
        Value::Bool(b) => !b && NON_POINTER_ZEROS.contains(&name),
        _ => false,
    }
}

/// The JSON form of a protobuf-encoded object of `kind`, or an error for the 400 answer.
pub(crate) fn to_json(kind: &str, body: &[u8]) -> Result<Value, String> {
    let envelope =
        body.strip_prefix(b"k8s\x00").ok_or("provided object is not a protobuf-encoded Kubernetes object")?;
    let unknown = decode(envelope, UNKNOWN).ok_or("unable to decode the protobuf envelope")?;
    let raw = STANDARD.decode(unknown["raw"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let fields =
        schema(kind).ok_or_else(|| format!("protobuf is not supported for {kind} by the emulated API server"))?;
    let mut object = decode(&raw, fields).ok_or("unable to decode the protobuf object")?;
    object["apiVersion"] = json!(if matches!(kind, "Deployment" | "ReplicaSet") { "apps/v1" } else { "v1" });
    object["kind"] = json!(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let meta = field(1, b"regcred");
        let mut entry = field(1, b".dockerconfigjson");
        entry.extend(field(2, b"{}"));
        let mut secret = field(1, &meta);
        secret.extend(field(2, &entry));
        secret.extend(field(3, b"kubernetes.io/dockerconfigjson"));
        let mut type_meta = field(1, b"v1");
        type_meta.extend(field(2, b"Secret"));
        let mut unknown = field(1, &type_meta);
        unknown.extend(field(2, &secret));
        let mut body = b"k8s\x00".to_vec();
        body.extend(unknown);
        let object = to_json("Secret", &body).expect("decodes");
        assert_eq!(object["metadata"]["name"], "regcred");
        assert_eq!(object["data"][".dockerconfigjson"], STANDARD.encode("{}"));
        assert_eq!(object["type"], "kubernetes.io/dockerconfigjson");
    }
}
