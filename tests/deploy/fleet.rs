//! Three instances: the StatefulSet's replicas, each named by its pod and with a store of its
//! own, spread over nodes, stopped gracefully, and disrupted one at a time.

use super::*;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn three_replicas_each_named_by_its_pod_with_a_store_of_its_own() {
    let d = load();
    let spec = d.statefulset.spec.as_ref().expect("spec");
    assert_eq!(
        spec.replicas,
        Some(3),
        "three instances share the flows' partitions"
    );
    assert_eq!(
        spec.pod_management_policy.as_deref(),
        Some("Parallel"),
        "a pod waiting on a cluster must not hold the others back"
    );
    let strategy = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref());
    assert!(
        matches!(strategy, None | Some("RollingUpdate")),
        "updates replace one pod at a time: {strategy:?}"
    );

    // The instance name (static group membership) is the pod name, from the downward API.
    let c = container(&d);
    let env = c.env.as_deref().unwrap_or_default();
    let named: Vec<_> = env
        .iter()
        .filter(|e| e.name == "HUBMIRROR_INSTANCE")
        .collect();
    assert_eq!(named.len(), 1, "env {env:?}");
    assert_eq!(
        named[0].value, None,
        "a fixed name would be shared by every replica"
    );
    let field = named[0]
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("HUBMIRROR_INSTANCE from a fieldRef");
    assert_eq!(field.field_path, "metadata.name");
    let args = c.args.as_deref().unwrap_or_default();
    assert!(
        !args.iter().any(|a| a.starts_with("--instance")),
        "--instance would override the pod name: {args:?}"
    );

    // Every store is a claim of its own: no pod volume is a claim all replicas would share.
    let t = topology(&d);
    let volumes = pod(&d).volumes.as_deref().unwrap_or_default();
    let shared: Vec<&str> = volumes
        .iter()
        .filter(|v| v.persistent_volume_claim.is_some())
        .map(|v| v.name.as_str())
        .collect();
    assert!(shared.is_empty(), "claims shared by every pod: {shared:?}");
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    let store = mounts
        .iter()
        .find(|m| m.mount_path == t.store_path)
        .expect("a mount at store.path");
    let templates: Vec<&str> = spec
        .volume_claim_templates
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert_eq!(templates, [store.name.as_str()], "the store, per pod");
}

#[test]
fn pods_spread_over_nodes_stop_gracefully_and_are_disrupted_one_at_a_time() {
    let d = load();
    let p = pod(&d);
    let labels = pod_labels(&d);

    let spread = p.topology_spread_constraints.as_deref().unwrap_or_default();
    let by_node = spread
        .iter()
        .find(|s| s.topology_key == "kubernetes.io/hostname")
        .expect("a topologySpreadConstraint on kubernetes.io/hostname");
    assert_eq!(by_node.max_skew, 1);
    for s in spread {
        assert_eq!(
            s.when_unsatisfiable, "ScheduleAnyway",
            "{}: with fewer nodes or zones than replicas the pods must still run",
            s.topology_key
        );
        let selects = s
            .label_selector
            .as_ref()
            .and_then(|l| l.match_labels.clone())
            .unwrap_or_default();
        assert!(
            !selects.is_empty() && is_subset(&selects, &labels),
            "{}: selector {selects:?} does not count hubmirror's pods {labels:?}",
            s.topology_key
        );
    }

    // Room for the drain: hubmirror returns within STOP_DEADLINE of SIGTERM; twice that before
    // the kubelet's SIGKILL.
    let grace = p
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    let stop = hubmirror::daemon::STOP_DEADLINE.as_secs_f64();
    assert!(
        grace as f64 >= 2.0 * stop,
        "grace {grace} s vs a stop of up to {stop} s"
    );

    let pdb = d.pdb.spec.as_ref().expect("PodDisruptionBudget spec");
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb.min_available, None,
        "one of maxUnavailable / minAvailable"
    );
    let selects = pdb
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let sts_selects = d
        .statefulset
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    assert!(
        !selects.is_empty() && is_subset(&selects, &labels),
        "the budget's selector {selects:?} vs the pods {labels:?}"
    );
    assert_eq!(
        selects, sts_selects,
        "the budget covers the StatefulSet's pods"
    );
}
