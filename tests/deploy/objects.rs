//! The objects the kustomization applies: the StatefulSet's locked-down pods matching the
//! topology, and the Service and ServiceMonitor reaching their metrics port (how the replicas
//! share the work is `fleet`'s).

use super::*;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn statefulset_runs_locked_down_pods_matching_the_topology() {
    let d = load();
    let t = topology(&d);
    let spec = d.statefulset.spec.as_ref().expect("spec");
    assert_eq!(
        spec.service_name, d.service.metadata.name,
        "governing Service"
    );
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && is_subset(&selector, &pod_labels(&d)),
        "selector {selector:?}"
    );

    let p = pod(&d);
    let grace = p
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > 10,
        "hubmirror needs up to 10 s after SIGTERM; grace is {grace}"
    );

    let c = container(&d);
    assert!(
        c.image
            .as_deref()
            .is_some_and(|i| i.starts_with("hubmirror:")),
        "image {:?}",
        c.image
    );
    let args = c.args.as_deref().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("run"),
        "args {args:?}"
    );
    assert_eq!(arg_after(c, "--log-format"), "json");

    // Metrics port: listening on every interface (kubelet probes and Prometheus come from
    // outside the pod), on the port the container declares.
    assert!(
        t.listen.ip().is_unspecified(),
        "metrics.listen {} is not reachable from outside the pod",
        t.listen
    );
    let ports = c.ports.as_deref().unwrap_or_default();
    let metrics = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .expect("container port named metrics");
    assert_eq!(
        metrics.container_port,
        i32::from(t.listen.port()),
        "metrics port vs metrics.listen"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            IntOrString::String("metrics".into()),
            "{path} port"
        );
    }

    let res = c.resources.as_ref().expect("resources");
    for (what, map) in [("requests", &res.requests), ("limits", &res.limits)] {
        let map = map.as_ref().unwrap_or_else(|| panic!("no {what}"));
        for r in ["cpu", "memory"] {
            assert!(map.contains_key(r), "{what} lack {r}");
        }
    }

    let psc = p.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_group, Some(65532));
    assert_eq!(
        psc.fs_group,
        Some(65532),
        "the volume must be writable by the user"
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let csc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(csc.read_only_root_filesystem, Some(true));
    assert_eq!(csc.allow_privilege_escalation, Some(false));
    let drop = csc
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.clone())
        .unwrap_or_default();
    assert!(
        drop.iter().any(|d| d == "ALL"),
        "capabilities.drop {drop:?}"
    );

    // Every mount has a source: a pod volume or a claim template.
    let volumes = p.volumes.as_deref().unwrap_or_default();
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    let claim_names: Vec<&str> = claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    for m in mounts {
        let in_pod = volumes.iter().any(|v| v.name == m.name);
        let in_claims = claim_names.contains(&m.name.as_str());
        assert!(
            in_pod != in_claims,
            "volumeMount {} needs exactly one source",
            m.name
        );
    }

    // The topology file: the ConfigMap's key, where --config points.
    let (ro, vol, key) = mounted_file(&d, arg_after(c, "--config"));
    assert!(ro, "the topology mount is read-only");
    assert_eq!(
        vol.config_map.as_ref().map(|c| c.name.as_str()),
        d.configmap.metadata.name.as_deref(),
        "--config is not the ConfigMap"
    );
    assert_eq!(key, "topology.yaml");

    // The connection string: the Secret's key, where the topology's file is.
    let (ro, vol, key) = mounted_file(&d, &t.secret_file);
    assert!(ro, "the secret mount is read-only");
    assert_eq!(
        vol.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
        d.secret.metadata.name.as_deref(),
        "{} is not the Secret",
        t.secret_file
    );
    assert_eq!(key, "eventhubspassword");
    secret_value(&d, &key);

    // The store: on the claim template, not the read-only root or an emptyDir.
    let store = mounts
        .iter()
        .find(|m| m.mount_path == t.store_path)
        .unwrap_or_else(|| panic!("no volumeMount at store.path {}", t.store_path));
    assert_ne!(store.read_only, Some(true), "the store must be writable");
    let claim = claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(store.name.as_str()))
        .unwrap_or_else(|| panic!("store mount {} is not a volumeClaimTemplate", store.name));
    let cspec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(
        cspec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    let storage = cspec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    assert!(storage.is_some(), "the claim requests no storage");

    // A writable /tmp next to the read-only root.
    let tmp = mounts
        .iter()
        .find(|m| m.mount_path == "/tmp")
        .expect("a /tmp mount");
    let tmp_vol = volumes
        .iter()
        .find(|v| v.name == tmp.name)
        .expect("/tmp volume");
    assert!(tmp_vol.empty_dir.is_some(), "/tmp is an emptyDir");
}

#[test]
fn service_and_servicemonitor_reach_the_metrics_port() {
    let d = load();
    let t = topology(&d);
    let spec = d.service.spec.as_ref().expect("service spec");
    assert!(
        matches!(spec.type_.as_deref(), None | Some("ClusterIP")),
        "type {:?}",
        spec.type_
    );
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(!selector.is_empty(), "the Service selects nothing");
    assert!(
        is_subset(&selector, &pod_labels(&d)),
        "Service selector {selector:?} does not match the pod labels {:?}",
        pod_labels(&d)
    );
    let ports = spec.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .expect("Service port named metrics");
    assert_eq!(port.port, i32::from(t.listen.port()));
    assert!(
        matches!(&port.target_port, Some(IntOrString::String(s)) if s == "metrics")
            || port.target_port == Some(IntOrString::Int(i32::from(t.listen.port()))),
        "targetPort {:?}",
        port.target_port
    );

    let sm = &d.servicemonitor;
    assert_eq!(sm.kind, "ServiceMonitor");
    assert_eq!(sm.api_version, "monitoring.coreos.com/v1");
    assert!(sm.spec.selector.match_expressions.is_none());
    let sel = sm.spec.selector.match_labels.clone().unwrap_or_default();
    let svc_labels = d.service.metadata.labels.clone().unwrap_or_default();
    assert!(
        !sel.is_empty() && is_subset(&sel, &svc_labels),
        "ServiceMonitor selector {sel:?} vs Service labels {svc_labels:?}"
    );
    assert!(!sm.spec.endpoints.is_empty());
    for e in &sm.spec.endpoints {
        assert_eq!(
            e.port, "metrics",
            "endpoint port is the Service's port name"
        );
        assert_eq!(e.path, "/metrics");
        assert_eq!(e.interval, "30s");
        assert!(
            e.honor_labels,
            "honorLabels keeps hubmirror's `instance` label (the pod name)"
        );
    }
}
