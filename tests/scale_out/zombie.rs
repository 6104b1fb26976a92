//! A zombie: one instance cut off from the source cluster (a network partition: its requests
//! go unanswered) past the session timeout while it still reaches the target, so that the group
//! gives its partitions to the other instance; then the cut ends. Whatever the cut-off instance
//! still held must never reach the target after the new owner resumed.

use super::*;

use support::proxy::CutProxy;

#[test]
fn an_instance_cut_off_from_the_source_past_the_session_timeout_writes_nothing_twice() {
    // Every client of the source connects through the proxy; the target is reached directly.
    let (onprem, proxy) = CutProxy::in_front_of_tansu();
    let dr = Tansu::start();
    let (ends, topology) = onprem_to_dr(&onprem, &dr);
    let fleet = Fleet::new(topology, &[]);
    let mut scene = Scene::start("zombie", fleet, &ends, RATE, &["m1", "m2"]);
    scene.run_for(Duration::from_secs(3));
    let cut = Instant::now();
    scene.event("cut m2 off the source".into(), |f| {
        let pid = f.get("m2").pid().expect("m2 runs");
        format!("({} open connections cut)", proxy.cut_process(pid))
    });
    // Past the session timeout by 5 s: the group has given m2's partitions to m1 by then.
    scene.run_for((SESSION_TIMEOUT + Duration::from_secs(5)).saturating_sub(cut.elapsed()));
    scene.event("end the cut".into(), |f| {
        proxy.restore();
        let back = f.wait_owning("m2", TOPIC, MOVE_LIMIT);
        format!("(m2 owning again after {back:.1?})")
    });
    scene.run_for(Duration::from_secs(4));
    scene.finish(&["m1", "m2"]);
}
