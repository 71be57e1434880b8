//! Image references as container runtimes read them: `[host/]repository[:tag][@digest]`,
//! with Docker Hub's defaults for references without a registry host.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// The registry host (`docker.io` when the reference names none).
    pub host: String,
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let (first, rest) = image.split_once('/').unwrap_or(("", image));
        let explicit_host = !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
        let (host, path) = if explicit_host {
            (first.to_string(), rest.to_string())
        } else {
            ("docker.io".to_string(), image.to_string())
        };
        let (path, reference) = match path.split_once('@') {
            Some((p, digest)) => (p.to_string(), digest.to_string()),
            None => match path.rsplit_once(':') {
                Some((p, tag)) if !tag.contains('/') => (p.to_string(), tag.to_string()),
                _ => (path.clone(), "latest".to_string()),
            },
        };
        let repository = if host == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        ImageRef { host, repository, reference }
    }
}

#[cfg(test)]
mod tests {
    use super::ImageRef;

    #[test]
    fn references() {
        let r = ImageRef::parse("myacr.azurecr.io/team/app:1.0");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("myacr.azurecr.io", "team/app", "1.0")
        );
        assert_eq!(ImageRef::parse("nginx").repository, "library/nginx");
        assert_eq!(ImageRef::parse("nginx").reference, "latest");
        assert_eq!(ImageRef::parse("localhost:5000/x@sha256:ab").reference, "sha256:ab");
        assert_eq!(ImageRef::parse("acr.azurecr.io/a/b").reference, "latest");
    }
}
