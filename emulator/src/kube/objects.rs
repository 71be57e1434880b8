//! The verbs on resource paths: get, list (selectors, `limit`/`continue`), create, update
//! (PUT), patch (merge, JSON, strategic, apply), delete and deletecollection, with
//! resourceVersion preconditions, managedFields, `dryRun=All` and the real Status bodies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::apply::apply;
use super::apps;
use super::fields::record_update;
use super::lifecycle;
use super::omitempty::drop_empty;
use super::pods;
use super::resources::{NAMESPACES, ResourceType};
use super::select::Selector;
use super::status::{self, Failure, bad_request};
use super::store::{Store, namespace_defaults, now, stamp_new};
use super::table;
use super::validate::admit;
use crate::http::{Reply, Req};

/// One call on a resource path.
pub(crate) struct Call<'a> {
    pub req: &'a Req,
    pub res: &'static ResourceType,
    pub namespace: &'a str,
    pub name: &'a str,
    pub subresource: Option<&'a str>,
    /// `settings.namespace_controller_delay_ms`.
    pub controller_delay: std::time::Duration,
}

impl Call<'_> {
    fn dry_run(&self) -> bool {
        self.req.query.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }

    /// The field manager: the `fieldManager` parameter, else the User-Agent's first word.
    fn manager(&self) -> String {
        if let Some(m) = self.req.query.iter().find(|(k, _)| k == "fieldManager").map(|(_, v)| v.clone()) {
            return m;
        }
        self.req
            .header("user-agent")
            .and_then(|ua| ua.split('/').next())
            .filter(|m| !m.is_empty())
            .unwrap_or("unknown")
            .to_string()
    }

    fn wants_table(&self) -> bool {
        self.req.header("accept").is_some_and(|a| a.contains("as=Table"))
    }
}

/// Serves every verb but watch (see `watch`).
pub(crate) fn serve(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let named = !call.name.is_empty();
    match (call.req.method.as_str(), named) {
        ("GET", true) => get(store, call),
        ("GET", false) => list(store, call),
        ("POST", false) => create(store, call),
        ("PUT", true) => update(store, call),
        ("PATCH", true) => patch(store, call),
        ("DELETE", true) => delete(store, call),
        ("DELETE", false) => delete_collection(store, call),
        (method, _) => Err(status::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

/// The object as clients read it: with `kind` and `apiVersion`.
fn full(res: &ResourceType, mut object: Value) -> Value {
    object["kind"] = json!(res.kind);
    object["apiVersion"] = json!(res.api_version());
    object
}

/// `fieldValidation` on a decoded body or patched object; warnings go into `Warning` headers.
fn validate_fields(call: &Call<'_>, object: &mut Value) -> Result<Vec<String>, Failure> {
    super::schema::check(call.res.kind, call.req.query("fieldValidation"), object)
}

fn with_warnings(mut reply: Reply, warnings: &[String]) -> Reply {
    for w in warnings {
        reply = reply.with_header("Warning", format!("299 - \"{}\"", w.replace('"', "\\\"")));
    }
    reply
}

fn answer(call: &Call<'_>, status: u16, object: Value) -> Reply {
    let object = full(call.res, object);
    if call.wants_table() {
        return Reply::json(status, &table::single(call.res, &object));
    }
    Reply::json(status, &object)
}

fn get(store: &Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let object =
        store.get(call.res, call.namespace, call.name).ok_or_else(|| status::not_found(call.res.plural, call.name))?;
    Ok(answer(call, 200, object.clone()))
}

fn list(store: &Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let selector = Selector::parse(call.res, call.req.query("labelSelector"), call.req.query("fieldSelector"))?;
    let namespace = if call.namespace.is_empty() { None } else { Some(call.namespace) };
    let matching: Vec<&Value> = store.list(call.res, namespace).into_iter().filter(|o| selector.matches(o)).collect();
    // `continue` is an opaque token: here the base64 of the offset and the list's revision.
    let offset = match call.req.query("continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.split_once(':').and_then(|(o, _)| o.parse::<usize>().ok()))
            .ok_or_else(|| {
                bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                )
            })?,
    };
    let limit = call.req.query("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let page: Vec<Value> =
        matching.iter().skip(offset).take(limit.unwrap_or(usize::MAX)).map(|o| (*o).clone()).collect();
    let mut metadata = json!({"resourceVersion": store.revision.to_string()});
    let next = offset + page.len();
    if next < matching.len() {
        metadata["continue"] = json!(URL_SAFE_NO_PAD.encode(format!("{next}:{}", store.revision)));
        metadata["remainingItemCount"] = json!(matching.len() - next);
    }
    if call.wants_table() {
        return Ok(Reply::json(200, &table::list(call.res, &page, metadata)));
    }
    Ok(Reply::json(
        200,
        &json!({"kind": format!("{}List", call.res.kind), "apiVersion": call.res.api_version(), "metadata": metadata, "items": page}),
    ))
}

/// Parses a request body: JSON, or YAML for apply patches.
fn body(call: &Call<'_>, yaml: bool) -> Result<Value, Failure> {
    let kind = call.res.kind;
    if call.req.header("content-type").is_some_and(|c| c.contains("protobuf")) {
        return super::proto::to_json(kind, &call.req.body)
            .map_err(|e| bad_request(format!("{kind} in version \"v1\" cannot be handled as a {kind}: {e}")));
    }
    let parsed: Result<Value, String> = serde_json::from_slice(&call.req.body).map_err(|e| e.to_string());
    let parsed = match parsed {
        Ok(v) => Ok(v),
        Err(e) if yaml => {
            let text = String::from_utf8_lossy(&call.req.body);
            serde_saphyr::from_str::<Value>(&text).map_err(|y| format!("error converting YAML to JSON: {y}")).or(Err(e))
        }
        Err(e) => Err(e),
    };
    let value =
        parsed.map_err(|e| bad_request(format!("{kind} in version \"v1\" cannot be handled as a {kind}: {e}")))?;
    if !value.is_object() {
        return Err(bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: json: cannot unmarshal into Go value of type struct"
        )));
    }
    Ok(value)
}

/// A create needs its namespace, and one that is not being deleted (NamespaceLifecycle).
fn namespace_must_exist(store: &Store, call: &Call<'_>, name: &str) -> Result<(), Failure> {
    if !call.res.namespaced {
        return Ok(());
    }
    if store.get(NAMESPACES, "", call.namespace).is_none() {
        return Err(status::not_found("namespaces", call.namespace));
    }
    if lifecycle::is_terminating(store, call.namespace) {
        return Err(status::namespace_terminating(call.res.plural, name, call.namespace));
    }
    Ok(())
}

fn check_namespace(call: &Call<'_>, object: &mut Value) -> Result<(), Failure> {
    if !call.res.namespaced {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        return Ok(());
    }
    match object["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && ns != call.namespace => {
            Err(bad_request("the namespace of the provided object does not match the namespace sent on the request"))
        }
        _ => {
            object["metadata"]["namespace"] = json!(call.namespace);
            Ok(())
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// What decoding does to a body before the field manager sees it: a Secret's `stringData`
/// folded into `data` and its default `type`.
fn server_defaults(kind: &str, object: &mut Value) -> Result<(), Failure> {
    if kind == "Secret" {
        super::validate::normalize_secret(object)?;
    }
    Ok(())
}

/// Stores a new object after admission: server metadata, defaults, controllers' side effects.
fn insert(store: &mut Store, call: &Call<'_>, mut object: Value, dry_run: bool) -> Result<Value, Failure> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if store.get(call.res, call.namespace, &name).is_some() {
        return Err(status::already_exists(call.res.plural, &name));
    }
    admit(call.res, None, &mut object)?;
    if call.res.kind == "Pod" {
        pods::admit(store, call.namespace, &mut object)?;
    }
    if call.res.kind == "Namespace" {
        object = namespace_defaults(object);
    }
    apps::defaults(call.res.kind, &mut object);
    drop_empty(call.res.kind, &mut object);
    stamp_new(&mut object);
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    object = full(call.res, object);
    if dry_run {
        object["metadata"]["resourceVersion"] = json!("");
        return Ok(object);
    }
    let stored = store.put(call.res, call.namespace, &name, object);
    if call.res.kind == "Namespace" {
        if call.controller_delay.is_zero() {
            store.namespace_created(&name);
        } else {
            store.pending_namespaces.push((name.clone(), std::time::Instant::now() + call.controller_delay));
        }
    }
    Ok(stored)
}

fn create(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let mut object = body(call, false)?;
    let warnings = validate_fields(call, &mut object)?;
    drop_empty(call.res.kind, &mut object);
    check_namespace(call, &mut object)?;
    if object["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = object["metadata"]["generateName"].as_str().filter(|p| !p.is_empty())
    {
        object["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix()));
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    namespace_must_exist(store, call, &name)?;
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    // Decoding applies the defaults before the field manager runs, so the writer owns them.
    server_defaults(call.res.kind, &mut object)?;
    record_update(call.res.kind, None, &mut object, &call.manager(), &now());
    let stored = insert(store, call, object, call.dry_run())?;
    Ok(with_warnings(answer(call, 201, stored), &warnings))
}

/// Writes `new` over the stored `old`: preconditions, admission, managedFields, storage.
fn replace(
    store: &mut Store,
    call: &Call<'_>,
    old: &Value,
    mut new: Value,
    manager: Option<&str>,
) -> Result<Value, Failure> {
    let name = call.name;
    match new["metadata"]["name"].as_str() {
        Some(n) if n != name => {
            return Err(bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => new["metadata"]["name"] = json!(name),
    }
    check_namespace(call, &mut new)?;
    let current = old["metadata"]["resourceVersion"].as_str().unwrap_or_default();
    match new["metadata"]["resourceVersion"].as_str() {
        Some(rv) if !rv.is_empty() && rv != current => return Err(status::conflict(call.res.plural, name)),
        _ => {}
    }
    for kept in ["uid", "creationTimestamp"] {
        new["metadata"][kept] = old["metadata"][kept].clone();
    }
    if let Some(manager) = manager {
        server_defaults(call.res.kind, &mut new)?;
        new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        record_update(call.res.kind, Some(old), &mut new, manager, &now());
    }
    if call.subresource == Some("status") {
        // Writes to /status change only the status.
        let status = new["status"].clone();
        new = old.clone();
        new["status"] = status;
    } else if call.res.kind == "Pod" || call.res.kind == "Namespace" {
        new["status"] = old["status"].clone();
    } else {
        apps::on_update(call.res.kind, old, &mut new);
    }
    admit(call.res, Some(old), &mut new)?;
    if call.res.kind == "Namespace" {
        new["spec"] = old["spec"].clone();
    }
    drop_empty(call.res.kind, &mut new);
    let mut new = full(call.res, new);
    if let Some(meta) = new["metadata"].as_object_mut()
        && meta.get("managedFields").is_some_and(Value::is_null)
    {
        meta.remove("managedFields");
    }
    if call.dry_run() {
        return Ok(new);
    }
    let stored = store.put(call.res, call.namespace, name, new);
    if stored["metadata"]["deletionTimestamp"].is_string() {
        // A finalizer may have been removed from an object being deleted.
        lifecycle::settle(store);
    }
    Ok(stored)
}

fn update(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let mut new = body(call, false)?;
    let warnings = validate_fields(call, &mut new)?;
    drop_empty(call.res.kind, &mut new);
    let old = store
        .get(call.res, call.namespace, call.name)
        .cloned()
        .ok_or_else(|| status::not_found(call.res.plural, call.name))?;
    let stored = replace(store, call, &old, new, Some(&call.manager()))?;
    Ok(with_warnings(answer(call, 200, stored), &warnings))
}

fn patch(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    let content_type = call
        .req
        .header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let old = store.get(call.res, call.namespace, call.name).cloned();
    if content_type == "application/apply-patch+yaml" {
        return server_side_apply(store, call, old);
    }
    let old = old.ok_or_else(|| status::not_found(call.res.plural, call.name))?;
    let document: Value = serde_json::from_slice(&call.req.body).map_err(|e| bad_request(e.to_string()))?;
    let mut base = full(call.res, old.clone());
    if let Some(meta) = base["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let patched = match content_type.as_str() {
        "application/merge-patch+json" => super::patch::merge(&base, &document),
        "application/strategic-merge-patch+json" => {
            super::patch::strategic(call.res.kind, &base, &document).map_err(bad_request)?
        }
        "application/json-patch+json" => super::patch::json_patch(&base, &document).map_err(|e| match e {
            super::patch::PatchError::Decode(m) => bad_request(m),
            // The apiserver wraps every apply error (a failed `test` among them) in a generic
            // 422 that names neither the patch nor the op (`NewGenericServerResponse`): clients
            // can only treat it as "the live object changed".
            super::patch::PatchError::Apply(_) => {
                Failure::new(422, "Invalid", "the server rejected our request due to an error in our request")
                    .with_details(json!({}))
            }
        })?,
        _ => return Err(status::unsupported_media_type()),
    };
    let mut patched = patched;
    let warnings = validate_fields(call, &mut patched)?;
    drop_empty(call.res.kind, &mut patched);
    let stored = replace(store, call, &old, patched, Some(&call.manager()))?;
    Ok(with_warnings(answer(call, 200, stored), &warnings))
}

fn server_side_apply(store: &mut Store, call: &Call<'_>, old: Option<Value>) -> Result<Reply, Failure> {
    let Some(manager) =
        call.req.query.iter().find(|(k, _)| k == "fieldManager").map(|(_, v)| v.clone()).filter(|m| !m.is_empty())
    else {
        return Err(Failure::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        )
        .with_details(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})));
    };
    let force = call.req.query.iter().any(|(k, v)| k == "force" && v == "true");
    let mut config = body(call, true)?;
    super::schema::check_apply(call.res.kind, &config)?;
    match config["metadata"]["name"].as_str() {
        Some(n) if n != call.name => {
            return Err(bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                call.name
            )));
        }
        _ => config["metadata"]["name"] = json!(call.name),
    }
    check_namespace(call, &mut config)?;
    let time = now();
    match old {
        None => {
            namespace_must_exist(store, call, call.name)?;
            let created = apply(call.res.kind, None, &config, &manager, force, &time)?;
            let stored = insert(store, call, created, call.dry_run())?;
            Ok(answer(call, 201, stored))
        }
        Some(old) => {
            let current = old["metadata"]["resourceVersion"].as_str().unwrap_or_default();
            if let Some(rv) = config["metadata"]["resourceVersion"].as_str()
                && !rv.is_empty()
                && rv != current
            {
                return Err(status::conflict(call.res.plural, call.name));
            }
            let merged = apply(call.res.kind, Some(&old), &config, &manager, force, &time)?;
            let stored = replace(store, call, &old, merged, None)?;
            Ok(answer(call, 200, stored))
        }
    }
}

fn preconditions(call: &Call<'_>, object: &Value) -> Result<(), Failure> {
    let options: Value = serde_json::from_slice(&call.req.body).unwrap_or(Value::Null);
    let pre = &options["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        let actual = object["metadata"]["uid"].as_str().unwrap_or_default();
        if uid != actual {
            return Err(status::precondition_failed(
                call.res.plural,
                call.name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
            ));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        let actual = object["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        if rv != actual {
            return Err(status::precondition_failed(
                call.res.plural,
                call.name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Deletes one object (see `lifecycle`): returns it as answered and whether it is gone
/// (false while finalizers or a terminating namespace's content keep it).
fn remove_one(store: &mut Store, call: &Call<'_>, name: &str, dry_run: bool) -> Result<(Value, bool), Failure> {
    let object =
        store.get(call.res, call.namespace, name).cloned().ok_or_else(|| status::not_found(call.res.plural, name))?;
    if dry_run {
        return Ok((object, true));
    }
    lifecycle::delete(store, call.res, call.namespace, name).ok_or_else(|| status::not_found(call.res.plural, name))
}

fn delete(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    if let Some(object) = store.get(call.res, call.namespace, call.name) {
        preconditions(call, object)?;
    }
    let (object, gone) = remove_one(store, call, call.name, call.dry_run())?;
    match call.res.kind {
        // Kept while finalizers run: the answer is the object, marked for deletion.
        _ if !gone => Ok(Reply::json(200, &full(call.res, object))),
        "Pod" => {
            let mut object = full(call.res, object);
            object["metadata"]["deletionTimestamp"] = json!(now());
            object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            Ok(Reply::json(200, &object))
        }
        "Namespace" => {
            let mut object = full(call.res, object);
            object["status"]["phase"] = json!("Terminating");
            if !object["metadata"]["deletionTimestamp"].is_string() {
                object["metadata"]["deletionTimestamp"] = json!(now());
            }
            Ok(Reply::json(200, &object))
        }
        _ => Ok(Reply::json(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": call.name, "kind": call.res.plural, "uid": object["metadata"]["uid"]}}),
        )),
    }
}

fn delete_collection(store: &mut Store, call: &Call<'_>) -> Result<Reply, Failure> {
    if call.res.kind == "Namespace" {
        return Err(status::method_not_allowed("the server does not allow this method on the requested resource"));
    }
    let selector = Selector::parse(call.res, call.req.query("labelSelector"), call.req.query("fieldSelector"))?;
    let namespace = if call.namespace.is_empty() { None } else { Some(call.namespace) };
    let victims: Vec<Value> =
        store.list(call.res, namespace).into_iter().filter(|o| selector.matches(o)).cloned().collect();
    if !call.dry_run() {
        for v in &victims {
            let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
            store.remove(call.res, ns, v["metadata"]["name"].as_str().unwrap_or_default());
        }
    }
    Ok(Reply::json(
        200,
        &json!({"kind": format!("{}List", call.res.kind), "apiVersion": call.res.api_version(), "metadata": {"resourceVersion": store.revision.to_string()}, "items": victims}),
    ))
}
