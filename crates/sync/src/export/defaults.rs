//! What the API server defaults and what Kubernetes' controllers add, per built-in kind, as a
//! table: the clean export leaves these fields out (unless Git already holds the same value
//! there, see `export::at`).
//!
//! The table is data. A [`Part`] describes one API structure (a PodSpec, a Container, a
//! Service port) wherever it appears: its [`Field`]s, by path relative to the structure, and
//! the structures nested in it. [`KINDS`] maps each kind to the part that is its root;
//! [`EVERY_OBJECT`] applies to all kinds. A `*` in a path stands for every element of an
//! array. Every entry is documented in `docs/sync-semantics.md` (a test checks that each
//! part and path is named there), with its upstream source: `pkg/apis/<group>/v1/defaults.go`
//! of kubernetes/kubernetes for defaults, the named controller for added fields.

use serde_json::Value;

use crate::group_of;

/// One step into an object: a member of a map or an element of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A literal JSON value in the table.
#[derive(Debug)]
pub(crate) enum Lit {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// `{}`.
    EmptyObject,
    Null,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Exactly this list of strings.
    List(&'static [&'static str]),
}

impl Lit {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Lit::Str(s) => value.as_str() == Some(s),
            Lit::Int(n) => value.as_i64() == Some(*n),
            Lit::Bool(b) => value.as_bool() == Some(*b),
            Lit::EmptyObject => value.as_object().is_some_and(|o| o.is_empty()),
            Lit::Null => value.is_null(),
            Lit::OneOf(options) => value.as_str().is_some_and(|s| options.contains(&s)),
            Lit::List(items) => value.as_array().is_some_and(|a| {
                a.len() == items.len() && a.iter().zip(*items).all(|(v, i)| v.as_str() == Some(i))
            }),
        }
    }
}

/// When a field found at a table path is left out of the export.
#[derive(Debug)]
pub(crate) enum When {
    /// It holds the value the API server fills in when the field is absent.
    Is(Lit),
    /// The API server or a controller added it; whatever its value.
    Always,
    /// It holds anything but this value (allocated values; users write only this one).
    IsNot(Lit),
    /// It equals the field at this path of the same part (a copy the server made).
    SameAs(&'static [&'static str]),
    /// It equals the field at this path of the whole object.
    SameAsInObject(&'static [&'static str]),
    /// A rule of its own, named after what it checks.
    Test(fn(&Context<'_>) -> bool),
}

/// What a [`When::Test`] sees.
pub(crate) struct Context<'a> {
    /// The field's value.
    pub(crate) value: &'a Value,
    /// The part the field belongs to.
    pub(crate) part: &'a Value,
    /// The whole object.
    pub(crate) object: &'a Value,
}

/// A field of a part that may be left out.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) path: &'static [&'static str],
    pub(crate) when: When,
}

/// One API structure: its fields, and the structures nested in it (by path).
#[derive(Debug)]
pub(crate) struct Part {
    /// How `docs/sync-semantics.md` names it.
    #[cfg_attr(not(test), expect(dead_code))]
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
    pub(crate) parts: &'static [(&'static [&'static str], &'static Part)],
}

/// The root part of one kind.
#[derive(Debug)]
pub(crate) struct Kind {
    pub(crate) group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) root: &'static Part,
}

const fn is(path: &'static [&'static str], lit: Lit) -> Field {
    Field {
        path,
        when: When::Is(lit),
    }
}

const fn always(path: &'static [&'static str]) -> Field {
    Field {
        path,
        when: When::Always,
    }
}

const fn test(path: &'static [&'static str], check: fn(&Context<'_>) -> bool) -> Field {
    Field {
        path,
        when: When::Test(check),
    }
}

use Lit::{Bool, EmptyObject, Int, Null, Str};

/// Metadata of every object: annotations, labels and finalizers that controllers add.
pub(crate) static EVERY_OBJECT: Part = Part {
    name: "Every object",
    fields: &[
        always(&[
            "metadata",
            "annotations",
            "kubectl.kubernetes.io/last-applied-configuration",
        ]),
        always(&[
            "metadata",
            "annotations",
            "deployment.kubernetes.io/revision",
        ]),
        always(&[
            "metadata",
            "annotations",
            "deployment.kubernetes.io/desired-replicas",
        ]),
        always(&[
            "metadata",
            "annotations",
            "deployment.kubernetes.io/max-replicas",
        ]),
        always(&[
            "metadata",
            "annotations",
            "deprecated.daemonset.template.generation",
        ]),
        always(&["metadata", "annotations", "pv.kubernetes.io/bind-completed"]),
        always(&[
            "metadata",
            "annotations",
            "pv.kubernetes.io/bound-by-controller",
        ]),
        always(&[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-provisioner",
        ]),
        always(&[
            "metadata",
            "annotations",
            "volume.kubernetes.io/storage-provisioner",
        ]),
        always(&[
            "metadata",
            "annotations",
            "volume.kubernetes.io/selected-node",
        ]),
        always(&[
            "metadata",
            "annotations",
            "control-plane.alpha.kubernetes.io/leader",
        ]),
        always(&[
            "metadata",
            "annotations",
            "endpoints.kubernetes.io/last-change-trigger-time",
        ]),
        always(&[
            "metadata",
            "annotations",
            "batch.kubernetes.io/job-tracking",
        ]),
        is(
            &["metadata", "finalizers", "*"],
            Lit::OneOf(&[
                "kubernetes.io/pvc-protection",
                "kubernetes.io/pv-protection",
                "service.kubernetes.io/load-balancer-cleanup",
            ]),
        ),
    ],
    parts: &[],
};

static PROBE: Part = Part {
    name: "Probe",
    fields: &[
        is(&["timeoutSeconds"], Int(1)),
        is(&["periodSeconds"], Int(10)),
        is(&["successThreshold"], Int(1)),
        is(&["failureThreshold"], Int(3)),
        is(&["httpGet", "path"], Str("/")),
        is(&["httpGet", "scheme"], Str("HTTP")),
    ],
    parts: &[],
};

static CONTAINER: Part = Part {
    name: "Container",
    fields: &[
        test(&["imagePullPolicy"], pull_policy_is_the_default),
        is(&["terminationMessagePath"], Str("/dev/termination-log")),
        is(&["terminationMessagePolicy"], Str("File")),
        is(&["resources"], EmptyObject),
        is(&["ports", "*", "protocol"], Str("TCP")),
        is(
            &["env", "*", "valueFrom", "fieldRef", "apiVersion"],
            Str("v1"),
        ),
        is(
            &["env", "*", "valueFrom", "resourceFieldRef", "divisor"],
            Str("0"),
        ),
    ],
    parts: &[
        (&["livenessProbe"], &PROBE),
        (&["readinessProbe"], &PROBE),
        (&["startupProbe"], &PROBE),
    ],
};

static VOLUME: Part = Part {
    name: "Volume",
    fields: &[
        is(&["configMap", "defaultMode"], Int(0o644)),
        is(&["secret", "defaultMode"], Int(0o644)),
        is(&["downwardAPI", "defaultMode"], Int(0o644)),
        is(
            &["downwardAPI", "items", "*", "fieldRef", "apiVersion"],
            Str("v1"),
        ),
        is(&["projected", "defaultMode"], Int(0o644)),
        is(
            &[
                "projected",
                "sources",
                "*",
                "serviceAccountToken",
                "expirationSeconds",
            ],
            Int(3600),
        ),
        is(
            &[
                "projected",
                "sources",
                "*",
                "downwardAPI",
                "items",
                "*",
                "fieldRef",
                "apiVersion",
            ],
            Str("v1"),
        ),
        is(&["hostPath", "type"], Str("")),
    ],
    parts: &[],
};

static POD_SPEC: Part = Part {
    name: "PodSpec",
    fields: &[
        is(&["dnsPolicy"], Str("ClusterFirst")),
        is(&["restartPolicy"], Str("Always")),
        is(&["schedulerName"], Str("default-scheduler")),
        is(&["securityContext"], EmptyObject),
        is(&["terminationGracePeriodSeconds"], Int(30)),
        Field {
            path: &["serviceAccount"],
            when: When::SameAs(&["serviceAccountName"]),
        },
    ],
    parts: &[
        (&["containers", "*"], &CONTAINER),
        (&["initContainers", "*"], &CONTAINER),
        (&["ephemeralContainers", "*"], &CONTAINER),
        (&["volumes", "*"], &VOLUME),
    ],
};

static POD_TEMPLATE: Part = Part {
    name: "PodTemplateSpec",
    fields: &[is(&["metadata", "creationTimestamp"], Null)],
    parts: &[(&["spec"], &POD_SPEC)],
};

static POD: Part = Part {
    name: "Pod",
    fields: &[is(&["spec", "enableServiceLinks"], Bool(true))],
    parts: &[(&["spec"], &POD_SPEC)],
};

static POD_TEMPLATE_OBJECT: Part = Part {
    name: "PodTemplate",
    fields: &[],
    parts: &[(&["template"], &POD_TEMPLATE)],
};

static REPLICATION_CONTROLLER: Part = Part {
    name: "ReplicationController",
    fields: &[is(&["spec", "replicas"], Int(1))],
    parts: &[(&["spec", "template"], &POD_TEMPLATE)],
};

static DEPLOYMENT: Part = Part {
    name: "Deployment",
    fields: &[
        is(&["spec", "replicas"], Int(1)),
        is(&["spec", "strategy", "type"], Str("RollingUpdate")),
        is(
            &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
            Str("25%"),
        ),
        is(
            &["spec", "strategy", "rollingUpdate", "maxSurge"],
            Str("25%"),
        ),
        is(&["spec", "revisionHistoryLimit"], Int(10)),
        is(&["spec", "progressDeadlineSeconds"], Int(600)),
    ],
    parts: &[(&["spec", "template"], &POD_TEMPLATE)],
};

static CLAIM_TEMPLATE: Part = Part {
    name: "PersistentVolumeClaim template",
    fields: &[
        is(&["apiVersion"], Str("v1")),
        is(&["kind"], Str("PersistentVolumeClaim")),
        is(&["metadata", "creationTimestamp"], Null),
        is(&["spec", "volumeMode"], Str("Filesystem")),
        always(&["status"]),
    ],
    parts: &[],
};

static STATEFUL_SET: Part = Part {
    name: "StatefulSet",
    fields: &[
        is(&["spec", "replicas"], Int(1)),
        is(&["spec", "podManagementPolicy"], Str("OrderedReady")),
        is(&["spec", "updateStrategy", "type"], Str("RollingUpdate")),
        is(
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
            Int(0),
        ),
        is(&["spec", "revisionHistoryLimit"], Int(10)),
        is(
            &[
                "spec",
                "persistentVolumeClaimRetentionPolicy",
                "whenDeleted",
            ],
            Str("Retain"),
        ),
        is(
            &["spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"],
            Str("Retain"),
        ),
    ],
    parts: &[
        (&["spec", "template"], &POD_TEMPLATE),
        (&["spec", "volumeClaimTemplates", "*"], &CLAIM_TEMPLATE),
    ],
};

static DAEMON_SET: Part = Part {
    name: "DaemonSet",
    fields: &[
        is(&["spec", "updateStrategy", "type"], Str("RollingUpdate")),
        is(
            &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            Int(1),
        ),
        is(
            &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
            Int(0),
        ),
        is(&["spec", "revisionHistoryLimit"], Int(10)),
    ],
    parts: &[(&["spec", "template"], &POD_TEMPLATE)],
};

static REPLICA_SET: Part = Part {
    name: "ReplicaSet",
    fields: &[is(&["spec", "replicas"], Int(1))],
    parts: &[(&["spec", "template"], &POD_TEMPLATE)],
};

/// The labels the API server generates for a Job's pods (`pkg/registry/batch/job/strategy.go`).
const JOB_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

static JOB: Part = Part {
    name: "Job",
    fields: &[
        is(&["spec", "parallelism"], Int(1)),
        test(&["spec", "completions"], job_completions_are_the_default),
        test(&["spec", "backoffLimit"], job_backoff_limit_is_the_default),
        is(&["spec", "completionMode"], Str("NonIndexed")),
        is(&["spec", "suspend"], Bool(false)),
        test(
            &["spec", "podReplacementPolicy"],
            job_pod_replacement_is_the_default,
        ),
        is(&["spec", "manualSelector"], Bool(false)),
        always(&["spec", "selector", "matchLabels", JOB_UID_LABELS[0]]),
        always(&["spec", "selector", "matchLabels", JOB_UID_LABELS[1]]),
        always(&["spec", "template", "metadata", "labels", JOB_UID_LABELS[0]]),
        always(&["spec", "template", "metadata", "labels", JOB_UID_LABELS[1]]),
        Field {
            path: &["spec", "template", "metadata", "labels", "job-name"],
            when: When::SameAsInObject(&["metadata", "name"]),
        },
        Field {
            path: &[
                "spec",
                "template",
                "metadata",
                "labels",
                "batch.kubernetes.io/job-name",
            ],
            when: When::SameAsInObject(&["metadata", "name"]),
        },
        always(&["metadata", "labels", JOB_UID_LABELS[0]]),
        always(&["metadata", "labels", JOB_UID_LABELS[1]]),
        Field {
            path: &["metadata", "labels", "job-name"],
            when: When::SameAsInObject(&["metadata", "name"]),
        },
        Field {
            path: &["metadata", "labels", "batch.kubernetes.io/job-name"],
            when: When::SameAsInObject(&["metadata", "name"]),
        },
    ],
    parts: &[(&["spec", "template"], &POD_TEMPLATE)],
};

static CRON_JOB: Part = Part {
    name: "CronJob",
    fields: &[
        is(&["spec", "concurrencyPolicy"], Str("Allow")),
        is(&["spec", "suspend"], Bool(false)),
        is(&["spec", "successfulJobsHistoryLimit"], Int(3)),
        is(&["spec", "failedJobsHistoryLimit"], Int(1)),
        is(
            &["spec", "jobTemplate", "metadata", "creationTimestamp"],
            Null,
        ),
    ],
    parts: &[(&["spec", "jobTemplate", "spec", "template"], &POD_TEMPLATE)],
};

static SERVICE_PORT: Part = Part {
    name: "ServicePort",
    fields: &[
        is(&["protocol"], Str("TCP")),
        Field {
            path: &["targetPort"],
            when: When::SameAs(&["port"]),
        },
    ],
    parts: &[],
};

static SERVICE: Part = Part {
    name: "Service",
    fields: &[
        Field {
            path: &["spec", "clusterIP"],
            when: When::IsNot(Str("None")),
        },
        always(&["spec", "clusterIPs"]),
        test(&["spec", "ipFamilies"], service_families_are_single_stack),
        is(&["spec", "ipFamilyPolicy"], Str("SingleStack")),
        is(&["spec", "sessionAffinity"], Str("None")),
        is(
            &[
                "spec",
                "sessionAffinityConfig",
                "clientIP",
                "timeoutSeconds",
            ],
            Int(10800),
        ),
        is(&["spec", "type"], Str("ClusterIP")),
        is(&["spec", "internalTrafficPolicy"], Str("Cluster")),
        is(&["spec", "externalTrafficPolicy"], Str("Cluster")),
        is(&["spec", "allocateLoadBalancerNodePorts"], Bool(true)),
    ],
    parts: &[(&["spec", "ports", "*"], &SERVICE_PORT)],
};

static PERSISTENT_VOLUME_CLAIM: Part = Part {
    name: "PersistentVolumeClaim",
    fields: &[
        is(&["spec", "volumeMode"], Str("Filesystem")),
        test(&["spec", "volumeName"], claim_was_bound_by_the_controller),
        Field {
            path: &["spec", "dataSourceRef"],
            when: When::SameAs(&["spec", "dataSource"]),
        },
    ],
    parts: &[],
};

static PERSISTENT_VOLUME: Part = Part {
    name: "PersistentVolume",
    fields: &[
        is(&["spec", "volumeMode"], Str("Filesystem")),
        is(&["spec", "persistentVolumeReclaimPolicy"], Str("Retain")),
        always(&["spec", "claimRef", "uid"]),
        always(&["spec", "claimRef", "resourceVersion"]),
        is(&["spec", "hostPath", "type"], Str("")),
    ],
    parts: &[],
};

static NAMESPACE: Part = Part {
    name: "Namespace",
    fields: &[
        Field {
            path: &["metadata", "labels", "kubernetes.io/metadata.name"],
            when: When::SameAs(&["metadata", "name"]),
        },
        is(&["spec", "finalizers"], Lit::List(&["kubernetes"])),
    ],
    parts: &[],
};

static SECRET: Part = Part {
    name: "Secret",
    fields: &[is(&["type"], Str("Opaque"))],
    parts: &[],
};

static SERVICE_ACCOUNT: Part = Part {
    name: "ServiceAccount",
    fields: &[test(&["secrets", "*"], is_a_legacy_token_reference)],
    parts: &[],
};

static INGRESS_CLASS: Part = Part {
    name: "IngressClass",
    fields: &[is(&["spec", "parameters", "scope"], Str("Cluster"))],
    parts: &[],
};

static NETWORK_POLICY: Part = Part {
    name: "NetworkPolicy",
    fields: &[
        test(&["spec", "policyTypes"], policy_types_are_the_default),
        is(
            &["spec", "ingress", "*", "ports", "*", "protocol"],
            Str("TCP"),
        ),
        is(
            &["spec", "egress", "*", "ports", "*", "protocol"],
            Str("TCP"),
        ),
    ],
    parts: &[],
};

static CLUSTER_ROLE: Part = Part {
    name: "ClusterRole",
    fields: &[test(&["rules"], role_is_aggregated)],
    parts: &[],
};

static SUBJECT: Part = Part {
    name: "Subject",
    fields: &[test(&["apiGroup"], subject_group_is_the_default)],
    parts: &[],
};

static ROLE_BINDING: Part = Part {
    name: "RoleBinding",
    fields: &[],
    parts: &[(&["subjects", "*"], &SUBJECT)],
};

static PRIORITY_CLASS: Part = Part {
    name: "PriorityClass",
    fields: &[is(&["preemptionPolicy"], Str("PreemptLowerPriority"))],
    parts: &[],
};

/// The root part of each kind that has one.
pub(crate) static KINDS: &[Kind] = &[
    kind("", "Pod", &POD),
    kind("", "PodTemplate", &POD_TEMPLATE_OBJECT),
    kind("", "ReplicationController", &REPLICATION_CONTROLLER),
    kind("", "Service", &SERVICE),
    kind("", "PersistentVolumeClaim", &PERSISTENT_VOLUME_CLAIM),
    kind("", "PersistentVolume", &PERSISTENT_VOLUME),
    kind("", "Namespace", &NAMESPACE),
    kind("", "Secret", &SECRET),
    kind("", "ServiceAccount", &SERVICE_ACCOUNT),
    kind("apps", "Deployment", &DEPLOYMENT),
    kind("apps", "StatefulSet", &STATEFUL_SET),
    kind("apps", "DaemonSet", &DAEMON_SET),
    kind("apps", "ReplicaSet", &REPLICA_SET),
    kind("batch", "Job", &JOB),
    kind("batch", "CronJob", &CRON_JOB),
    kind("networking.k8s.io", "IngressClass", &INGRESS_CLASS),
    kind("networking.k8s.io", "NetworkPolicy", &NETWORK_POLICY),
    kind("rbac.authorization.k8s.io", "ClusterRole", &CLUSTER_ROLE),
    kind("rbac.authorization.k8s.io", "RoleBinding", &ROLE_BINDING),
    kind(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        &ROLE_BINDING,
    ),
    kind("scheduling.k8s.io", "PriorityClass", &PRIORITY_CLASS),
];

const fn kind(group: &'static str, kind: &'static str, root: &'static Part) -> Kind {
    Kind { group, kind, root }
}

// --- The rules of their own ([`When::Test`]) ---

/// `imagePullPolicy` is what `SetDefaults_Container` picks for the container's image: `Always`
/// for the tag `latest` or no tag at all (unless pinned by digest), else `IfNotPresent`.
fn pull_policy_is_the_default(cx: &Context<'_>) -> bool {
    let Some(image) = cx.part["image"].as_str() else {
        return false;
    };
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    // The tag follows the last `:` after the last `/` (a registry may have a port).
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None if digest => "",
        None => "latest",
    };
    let default = if tag == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    };
    cx.value.as_str() == Some(default)
}

/// `completions: 1` is only a default when `parallelism` is 1 too: both were unset.
fn job_completions_are_the_default(cx: &Context<'_>) -> bool {
    cx.value.as_i64() == Some(1) && cx.object["spec"]["parallelism"].as_i64() == Some(1)
}

/// `backoffLimit` defaults to 6, or to the largest int32 with `backoffLimitPerIndex`.
fn job_backoff_limit_is_the_default(cx: &Context<'_>) -> bool {
    let default = if cx.object["spec"]["backoffLimitPerIndex"].is_null() {
        6
    } else {
        i64::from(i32::MAX)
    };
    cx.value.as_i64() == Some(default)
}

/// `podReplacementPolicy` defaults to `TerminatingOrFailed`, or to `Failed` with a
/// `podFailurePolicy`.
fn job_pod_replacement_is_the_default(cx: &Context<'_>) -> bool {
    let default = if cx.object["spec"]["podFailurePolicy"].is_null() {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    cx.value.as_str() == Some(default)
}

/// One IP family on a single-stack Service is the cluster's, assigned by the API server.
fn service_families_are_single_stack(cx: &Context<'_>) -> bool {
    let policy = cx.object["spec"]["ipFamilyPolicy"].as_str();
    cx.value.as_array().is_some_and(|a| a.len() == 1)
        && matches!(policy, None | Some("SingleStack"))
}

/// The PersistentVolume controller bound the claim to a volume it chose (it then sets the
/// `pv.kubernetes.io/bound-by-controller` annotation); a `volumeName` a user chose stays.
fn claim_was_bound_by_the_controller(cx: &Context<'_>) -> bool {
    cx.object["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
}

/// `policyTypes` is what `SetDefaults_NetworkPolicy` derives: `[Ingress]`, plus `Egress` when
/// there are egress rules.
fn policy_types_are_the_default(cx: &Context<'_>) -> bool {
    let egress = cx.object["spec"]["egress"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let expected: &[&str] = if egress {
        &["Ingress", "Egress"]
    } else {
        &["Ingress"]
    };
    Lit::List(expected).matches(cx.value)
}

/// The token controller of Kubernetes before 1.24 listed the token Secret it made for a
/// ServiceAccount (`<name>-token-<5 characters>`) in `secrets`.
fn is_a_legacy_token_reference(cx: &Context<'_>) -> bool {
    let (Some(sa), Some(secret)) = (
        cx.object["metadata"]["name"].as_str(),
        cx.value["name"].as_str(),
    ) else {
        return false;
    };
    secret
        .strip_prefix(sa)
        .and_then(|rest| rest.strip_prefix("-token-"))
        .is_some_and(|suffix| {
            suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// The aggregation controller writes the `rules` of a ClusterRole with an `aggregationRule`.
fn role_is_aggregated(cx: &Context<'_>) -> bool {
    !cx.object["aggregationRule"].is_null()
}

/// `SetDefaults_Subject` sets `apiGroup: rbac.authorization.k8s.io` for User and Group
/// subjects.
fn subject_group_is_the_default(cx: &Context<'_>) -> bool {
    matches!(cx.part["kind"].as_str(), Some("User" | "Group"))
        && cx.value == "rbac.authorization.k8s.io"
}

// --- Evaluation ---

/// The paths, in `object`, of every field the table leaves out of its export.
pub(crate) fn find(object: &Value) -> Vec<Vec<Step<'_>>> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    visit(&EVERY_OBJECT, object, object, &mut path, &mut out);
    let group = object["apiVersion"].as_str().map(group_of);
    let kind = object["kind"].as_str();
    if let Some(k) = KINDS
        .iter()
        .find(|k| Some(k.group) == group && Some(k.kind) == kind)
    {
        visit(k.root, object, object, &mut path, &mut out);
    }
    out
}

fn visit<'a>(
    part: &'static Part,
    here: &'a Value,
    object: &'a Value,
    path: &mut Vec<Step<'a>>,
    out: &mut Vec<Vec<Step<'a>>>,
) {
    for field in part.fields {
        each_at(here, field.path, path, &mut |value, path| {
            if holds(&field.when, value, here, object) {
                out.push(path.clone());
            }
        });
    }
    for (at, nested) in part.parts {
        each_at(here, at, path, &mut |value, path| {
            visit(nested, value, object, path, out);
        });
    }
}

/// Calls `f` with every value at `rel` below `value` (a `*` step visits every element of an
/// array) and its full path.
fn each_at<'a>(
    value: &'a Value,
    rel: &[&'static str],
    path: &mut Vec<Step<'a>>,
    f: &mut dyn FnMut(&'a Value, &mut Vec<Step<'a>>),
) {
    let Some((first, rest)) = rel.split_first() else {
        f(value, path);
        return;
    };
    match (*first, value) {
        ("*", Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                each_at(item, rest, path, f);
                path.pop();
            }
        }
        (key, Value::Object(map)) => {
            if let Some(child) = map.get(key) {
                path.push(Step::Key(key));
                each_at(child, rest, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

fn holds(when: &When, value: &Value, part: &Value, object: &Value) -> bool {
    fn at<'v>(root: &'v Value, path: &[&str]) -> Option<&'v Value> {
        path.iter().try_fold(root, |v, k| v.get(k))
    }
    match when {
        When::Is(lit) => lit.matches(value),
        When::Always => true,
        When::IsNot(lit) => !lit.matches(value),
        When::SameAs(path) => at(part, path) == Some(value),
        When::SameAsInObject(path) => at(object, path) == Some(value),
        When::Test(check) => check(&Context {
            value,
            part,
            object,
        }),
    }
}

/// Every part reachable from the table, once, with the paths of its fields: what
/// `docs/sync-semantics.md` must name.
#[cfg(test)]
pub(crate) fn documented_entries() -> Vec<(&'static str, Vec<String>)> {
    fn walk(
        part: &'static Part,
        seen: &mut Vec<&'static str>,
        out: &mut Vec<(&'static str, Vec<String>)>,
    ) {
        if seen.contains(&part.name) {
            return;
        }
        seen.push(part.name);
        let mut paths: Vec<String> = part.fields.iter().map(|f| display(f.path)).collect();
        paths.extend(part.parts.iter().map(|(at, _)| display(at)));
        out.push((part.name, paths));
        for (_, nested) in part.parts {
            walk(nested, seen, out);
        }
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    walk(&EVERY_OBJECT, &mut seen, &mut out);
    for k in KINDS {
        walk(k.root, &mut seen, &mut out);
    }
    out
}

/// How `docs/sync-semantics.md` writes a table path: `ports[*].protocol`,
/// `metadata.annotations["deployment.kubernetes.io/revision"]`.
#[cfg(test)]
fn display(path: &[&str]) -> String {
    let mut out = String::new();
    for step in path {
        match *step {
            "*" => out.push_str("[*]"),
            key if key.contains(['.', '/']) => out.push_str(&format!("[\"{key}\"]")),
            key => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(object: &Value) -> Vec<String> {
        let mut paths: Vec<String> = find(object)
            .iter()
            .map(|p| {
                p.iter()
                    .map(|s| match s {
                        Step::Key(k) => k.to_string(),
                        Step::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn only_default_values_are_found() {
        let deployment = |replicas: i64, policy: &str, image: &str| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {
                    "replicas": replicas,
                    "template": {"spec": {"containers": [
                        {"name": "a", "image": image, "imagePullPolicy": policy}
                    ]}}
                }
            })
        };
        assert_eq!(
            found(&deployment(1, "IfNotPresent", "nginx:1.27")),
            [
                "spec/replicas",
                "spec/template/spec/containers/0/imagePullPolicy"
            ]
        );
        assert!(found(&deployment(3, "Always", "nginx:1.27")).is_empty());
        for (image, default) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("registry.local:5000/team/nginx", "Always"),
            ("registry.local:5000/team/nginx:1.2", "IfNotPresent"),
            (
                "nginx@sha256:0fcfc9231fa11b473973a68c0394e7c85e2117a9ba7a9476897c07e40d718ffa",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0fcfc9231fa11b473973a68c0394e7c85e2117a9ba7a9476897c07e40d718ffa",
                "Always",
            ),
        ] {
            let other = if default == "Always" {
                "IfNotPresent"
            } else {
                "Always"
            };
            assert_eq!(found(&deployment(2, default, image)).len(), 1, "{image}");
            assert!(found(&deployment(2, other, image)).is_empty(), "{image}");
        }
    }

    #[test]
    fn conditions_look_at_the_right_fields() {
        let job = |spec: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"}, "spec": spec});
        assert_eq!(
            found(&job(json!({"completions": 1, "parallelism": 1}))),
            ["spec/completions", "spec/parallelism"]
        );
        assert_eq!(
            found(&job(json!({"completions": 1, "parallelism": 4}))),
            Vec::<String>::new(),
            "completions: 1 with parallelism 4 is a choice"
        );
        assert_eq!(
            found(&job(json!({"backoffLimit": 6}))),
            ["spec/backoffLimit"]
        );
        assert!(found(&job(json!({"backoffLimit": 6, "backoffLimitPerIndex": 1}))).is_empty());
        assert_eq!(
            found(&job(json!({"template": {"metadata": {"labels": {
                "job-name": "pi", "batch.kubernetes.io/job-name": "other", "controller-uid": "u"
            }}}}))),
            [
                "spec/template/metadata/labels/controller-uid",
                "spec/template/metadata/labels/job-name"
            ]
        );

        let service = |spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec});
        assert_eq!(
            found(&service(json!({"clusterIP": "10.0.0.7", "ports": [
                {"port": 80, "targetPort": 80, "protocol": "TCP"},
                {"port": 443, "targetPort": 8443, "protocol": "UDP"}
            ]}))),
            [
                "spec/clusterIP",
                "spec/ports/0/protocol",
                "spec/ports/0/targetPort"
            ]
        );
        assert!(
            found(&service(json!({"clusterIP": "None"}))).is_empty(),
            "headless stays"
        );
        assert!(
            found(&service(
                json!({"ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "PreferDualStack"})
            ))
            .is_empty()
        );

        let pvc = |annotations: Value| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data", "annotations": annotations},
                   "spec": {"volumeName": "pv-1"}})
        };
        assert!(
            found(&pvc(json!({}))).is_empty(),
            "a volume the user chose stays"
        );
        assert_eq!(
            found(&pvc(json!({"pv.kubernetes.io/bound-by-controller": "yes"}))),
            [
                "metadata/annotations/pv.kubernetes.io/bound-by-controller",
                "spec/volumeName"
            ]
        );

        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "build"},
                        "secrets": [{"name": "build-token-x7k2q"}, {"name": "registry"}]});
        assert_eq!(found(&sa), ["secrets/0"]);

        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "b"}, "subjects": [
            {"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "ServiceAccount", "name": "ci", "apiGroup": "rbac.authorization.k8s.io"}
        ]});
        assert_eq!(found(&binding), ["subjects/0/apiGroup"]);

        let policy = |spec: Value| json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec});
        assert_eq!(
            found(&policy(json!({"policyTypes": ["Ingress"]}))),
            ["spec/policyTypes"]
        );
        assert!(found(&policy(json!({"policyTypes": ["Ingress"], "egress": [{}]}))).is_empty());
    }

    #[test]
    fn other_kinds_and_groups_are_not_confused() {
        let custom = json!({"apiVersion": "example.com/v1", "kind": "Deployment",
                            "metadata": {"name": "x"}, "spec": {"replicas": 1}});
        assert!(found(&custom).is_empty());
    }

    #[test]
    fn every_entry_is_documented() {
        let docs = include_str!("../../../../docs/sync-semantics.md");
        for (part, paths) in documented_entries() {
            assert!(
                docs.contains(&format!("**{part}**")),
                "docs lack the part **{part}**"
            );
            for path in paths {
                assert!(
                    docs.contains(&format!("`{path}`")),
                    "docs lack `{path}` of {part}"
                );
            }
        }
    }
}
