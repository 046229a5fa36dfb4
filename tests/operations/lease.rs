//! Leader election against a real API server: one leader among candidates, skew safety (the
//! holder's `renewTime` is never compared with our clock), the gate closing before the term
//! could end for others, and a released Lease taken over at once. Short terms keep it fast.
//! (A module of `tests/operations.rs`, so it runs beside the other operations tests.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use git_controller::leader::{self, Candidate, LeaseConfig, Role};
use gitcontroller_testkit::cluster::{TestNamespace, client, kubeconfig};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::net::{TcpListener, TcpStream};

const LEASE: &str = "election";

/// A 2 s term, writes stop 1.2 s after the last renewal, renew every 200 ms.
fn config(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1200),
        retry_period: Duration::from_millis(200),
        ..LeaseConfig::new(ns, LEASE, identity)
    }
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get(LEASE)
        .await
        .unwrap();
    lease.spec?.holder_identity
}

/// Runs standby rounds of `candidate` for `window`; returns how many there were (all must be
/// standby).
async fn standby_rounds(candidate: &mut Candidate, window: Duration) -> usize {
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < window {
        assert_eq!(
            candidate.try_acquire_or_renew().await.unwrap(),
            Role::Standby,
            "round {rounds} at {:?}",
            started.elapsed()
        );
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rounds
}

#[tokio::test]
async fn of_two_candidates_exactly_one_leads_and_the_other_stands_by_while_it_renews() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lease-two").await;
    let ns = ns.name();
    let mut a = tokio::spawn(leader::acquire(client.clone(), config(ns, "a")));
    let mut b = tokio::spawn(leader::acquire(client.clone(), config(ns, "b")));
    // Whichever wins, the other keeps waiting.
    let (winner, a_won) = tokio::select! {
        won = &mut a => (won, true),
        won = &mut b => (won, false),
    };
    let winner = winner.unwrap().unwrap();
    let (loser, loser_name) = if a_won { (b, "b") } else { (a, "a") };
    let winner_name = if loser_name == "a" { "b" } else { "a" };
    assert!(winner.gate().is_leading());
    assert_eq!(holder(&client, ns).await.as_deref(), Some(winner_name));

    // A third candidate looks for twice the term: the renewing leader keeps it standby.
    let mut third = Candidate::new(client.clone(), config(ns, "c"));
    let rounds = standby_rounds(&mut third, Duration::from_secs(4)).await;
    assert!(rounds >= 10, "{rounds} rounds");
    assert!(winner.gate().is_leading(), "the leader kept renewing");
    assert!(!loser.is_finished(), "{loser_name} is still waiting");
    assert_eq!(holder(&client, ns).await.as_deref(), Some(winner_name));

    // The leader releases: the waiting candidate takes over at once (it watches the Lease).
    let released = Instant::now();
    assert!(winner.release().await.unwrap(), "it held the Lease");
    let next = loser.await.unwrap().unwrap();
    let took = released.elapsed();
    println!("a released Lease was taken over in {took:?} (term 2 s)");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(next.gate().is_leading());
    assert_eq!(holder(&client, ns).await.as_deref(), Some(loser_name));
}

/// Writes the Lease as a holder whose clock is `offset` off would: `renewTime` = now + offset.
async fn write_skewed(api: &Api<Lease>, holder: &str, offset: jiff::SignedDuration) {
    let now = MicroTime(jiff::Timestamp::now() + offset);
    let spec = LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(2),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        ..LeaseSpec::default()
    };
    match api.get_opt(LEASE).await.unwrap() {
        Some(lease) => {
            let lease = Lease {
                spec: Some(spec),
                ..lease
            };
            api.replace(LEASE, &PostParams::default(), &lease)
                .await
                .unwrap();
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_live_holder_whose_clock_is_minutes_behind_keeps_its_lease() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lease-behind").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let behind = jiff::SignedDuration::from_secs(-10 * 60);
    write_skewed(&api, "slow-clock", behind).await;
    // The holder renews every 300 ms; each renewTime is ten minutes in our past.
    let renewer = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                write_skewed(&api, "slow-clock", behind).await;
            }
        })
    };
    let mut standby = Candidate::new(client.clone(), config(ns.name(), "standby"));
    // Twice the 2 s term: a standby comparing renewTime with its clock would steal at once.
    let rounds = standby_rounds(&mut standby, Duration::from_secs(4)).await;
    renewer.abort();
    assert!(rounds >= 10, "{rounds} rounds");
    assert_eq!(
        holder(&client, ns.name()).await.as_deref(),
        Some("slow-clock")
    );
}

#[tokio::test]
async fn a_dead_holder_whose_clock_was_minutes_ahead_is_replaced_after_one_term() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lease-ahead").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    // Its last renewal says "ten minutes from now"; then it died.
    write_skewed(&api, "fast-clock", jiff::SignedDuration::from_secs(10 * 60)).await;
    let started = Instant::now();
    let leadership = tokio::time::timeout(
        Duration::from_secs(10),
        leader::acquire(client.clone(), config(ns.name(), "standby")),
    )
    .await
    .expect("the standby did not wait for the holder's clock")
    .unwrap();
    let took = started.elapsed();
    println!("a dead holder with a clock 10 min ahead was replaced after {took:?} (term 2 s)");
    assert!(
        took >= Duration::from_secs(2),
        "not before the term ran out by our clock: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(leadership.gate().is_leading());
    assert_eq!(holder(&client, ns.name()).await.as_deref(), Some("standby"));
}

/// A TCP proxy to the API server that can be cut: the leader's only way to it.
struct Cuttable {
    port: u16,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<std::sync::Mutex<Vec<_>>> = Arc::default();
        let tracked = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tracked.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self {
            port,
            task,
            connections,
        }
    }

    /// Stops accepting and drops every open connection.
    fn cut(&self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_writing_before_a_standby_may_take_over() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lease-cut").await;
    let file =
        kube::config::Kubeconfig::read_from(std::env::split_paths(kubeconfig()).next().unwrap())
            .unwrap();
    let mut through_proxy =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let server = through_proxy.cluster_url.authority().unwrap().to_string();
    let proxy = Cuttable::start(server).await;
    through_proxy.cluster_url = format!("https://127.0.0.1:{}", proxy.port).parse().unwrap();
    through_proxy.read_timeout = Some(Duration::from_millis(500));
    let leader_client = Client::try_from(through_proxy).unwrap();

    let leadership = leader::acquire(leader_client, config(ns.name(), "leader"))
        .await
        .unwrap();
    let gate = leadership.gate();
    let flag = gate.shared_flag();
    // A standby sees the Lease renewed (and so changing) while the proxy is up.
    let mut standby = Candidate::new(client.clone(), config(ns.name(), "standby"));
    standby_rounds(&mut standby, Duration::from_millis(600)).await;
    assert!(gate.is_leading());

    proxy.cut();
    let cut = Instant::now();
    let lost = leadership.lost();
    tokio::time::timeout(Duration::from_secs(3), lost)
        .await
        .expect("the leader noticed it could not renew");
    let closed_after = cut.elapsed();
    assert!(!gate.is_leading());
    assert!(
        !flag.load(std::sync::atomic::Ordering::SeqCst),
        "writes_allowed is false"
    );
    // The standby may take over only a full term after it last saw a change, which was no
    // earlier than the last renewal before the cut.
    let mut took_over = None;
    while took_over.is_none() {
        if standby.try_acquire_or_renew().await.unwrap() == Role::Leader {
            took_over = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took_over = took_over.unwrap();
    println!(
        "renewals cut: the leader stopped writing after {closed_after:?}, the standby took over after {took_over:?}"
    );
    assert!(
        closed_after < took_over,
        "the gate closed ({closed_after:?}) before the standby could take over ({took_over:?})"
    );
    assert!(closed_after <= Duration::from_millis(1200) + Duration::from_millis(300));
}
