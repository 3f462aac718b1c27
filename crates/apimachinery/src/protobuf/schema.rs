//! Protobuf schema table for the Kubernetes kinds that [`super::decode_object`]
//! and [`super::encode_object`] understand.
//!
//! GENERATED, do not edit by hand. Source of truth: the Go struct tags
//! (`json:"..."`, `protobuf:"..."`, pointer-ness, `omitempty`) and the
//! `generated.proto` files of k8s.io/api and k8s.io/apimachinery v0.35.7
//! (Kubernetes 1.35, a superset of every field kubectl 1.32 can send). Every
//! message, tag number, scalar type and cardinality was cross-checked against
//! the prost sources of the k8s-pb 0.9.0 crate (no mismatches).
//!
//! Added by hand in the same style (tags checked one by one against the
//! `generated.proto` files in the kube-rs/k8s-pb repository; JSON names,
//! pointer-ness and `omitempty` from the Go types): core/v1 Node, meta/v1
//! ListMeta, Status, PartialObjectMetadata, authorization.k8s.io/v1 reviews,
//! authentication.k8s.io/v1 TokenReview and SelfSubjectReview,
//! certificates.k8s.io/v1 CertificateSigningRequest, events.k8s.io/v1 Event,
//! apiextensions.k8s.io/v1 CustomResourceDefinition, admissionregistration.k8s.io/v1
//! webhook configurations and validating admission policies (+ bindings), and
//! `LIST_KINDS`.
//!
//! Reading a row: `f(tag, "jsonName", type, cardinality, omitempty)`.

use super::{Card::*, Field, Msg, Ty::*};

const fn f(
    tag: u32,
    json: &'static str,
    ty: super::Ty,
    card: super::Card,
    omitempty: bool,
) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        omitempty,
        omitzero: false,
    }
}

pub(super) static CORE_V1_NAMESPACE: Msg = Msg {
    name: "k8s.io.api.core.v1.Namespace",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_NAMESPACE_SPEC), Value, true),
        f(3, "status", Msg(&CORE_V1_NAMESPACE_STATUS), Value, true),
    ],
};

pub(super) static META_V1_OBJECT_META: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "generateName", Str, Value, true),
        f(3, "namespace", Str, Value, true),
        f(4, "selfLink", Str, Value, true),
        f(5, "uid", Str, Value, true),
        f(6, "resourceVersion", Str, Value, true),
        f(7, "generation", I64, Value, true),
        Field {
            omitzero: true,
            ..f(8, "creationTimestamp", Time, Value, true)
        },
        f(9, "deletionTimestamp", Time, Ptr, true),
        f(10, "deletionGracePeriodSeconds", I64, Ptr, true),
        f(11, "labels", Str, Map, true),
        f(12, "annotations", Str, Map, true),
        f(
            13,
            "ownerReferences",
            Msg(&META_V1_OWNER_REFERENCE),
            Repeated,
            true,
        ),
        f(14, "finalizers", Str, Repeated, true),
        f(
            17,
            "managedFields",
            Msg(&META_V1_MANAGED_FIELDS_ENTRY),
            Repeated,
            true,
        ),
    ],
};

pub(super) static META_V1_OWNER_REFERENCE: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.OwnerReference",
    fields: &[
        f(1, "kind", Str, Value, false),
        f(3, "name", Str, Value, false),
        f(4, "uid", Str, Value, false),
        f(5, "apiVersion", Str, Value, false),
        f(6, "controller", Bool, Ptr, true),
        f(7, "blockOwnerDeletion", Bool, Ptr, true),
    ],
};

pub(super) static META_V1_MANAGED_FIELDS_ENTRY: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
    fields: &[
        f(1, "manager", Str, Value, true),
        f(2, "operation", Str, Value, true),
        f(3, "apiVersion", Str, Value, true),
        f(4, "time", Time, Ptr, true),
        f(6, "fieldsType", Str, Value, true),
        f(7, "fieldsV1", RawJson, Ptr, true),
        f(8, "subresource", Str, Value, true),
    ],
};

pub(super) static CORE_V1_NAMESPACE_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.NamespaceSpec",
    fields: &[f(1, "finalizers", Str, Repeated, true)],
};

pub(super) static CORE_V1_NAMESPACE_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.NamespaceStatus",
    fields: &[
        f(1, "phase", Str, Value, true),
        f(
            2,
            "conditions",
            Msg(&CORE_V1_NAMESPACE_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_NAMESPACE_CONDITION: Msg = Msg {
    name: "k8s.io.api.core.v1.NamespaceCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(4, "lastTransitionTime", Time, Value, true),
        f(5, "reason", Str, Value, true),
        f(6, "message", Str, Value, true),
    ],
};

pub(super) static CORE_V1_CONFIG_MAP: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMap",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "data", Str, Map, true),
        f(3, "binaryData", Bytes, Map, true),
        f(4, "immutable", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SECRET: Msg = Msg {
    name: "k8s.io.api.core.v1.Secret",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "data", Bytes, Map, true),
        f(3, "type", Str, Value, true),
        f(4, "stringData", Str, Map, true),
        f(5, "immutable", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SERVICE_ACCOUNT: Msg = Msg {
    name: "k8s.io.api.core.v1.ServiceAccount",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "secrets", Msg(&CORE_V1_OBJECT_REFERENCE), Repeated, true),
        f(
            3,
            "imagePullSecrets",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Repeated,
            true,
        ),
        f(4, "automountServiceAccountToken", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ObjectReference",
    fields: &[
        f(1, "kind", Str, Value, true),
        f(2, "namespace", Str, Value, true),
        f(3, "name", Str, Value, true),
        f(4, "uid", Str, Value, true),
        f(5, "apiVersion", Str, Value, true),
        f(6, "resourceVersion", Str, Value, true),
        f(7, "fieldPath", Str, Value, true),
    ],
};

pub(super) static CORE_V1_LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.LocalObjectReference",
    fields: &[f(1, "name", Str, Value, true)],
};

pub(super) static CORE_V1_POD: Msg = Msg {
    name: "k8s.io.api.core.v1.Pod",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_POD_SPEC), Value, true),
        f(3, "status", Msg(&CORE_V1_POD_STATUS), Value, true),
    ],
};

pub(super) static CORE_V1_POD_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.PodSpec",
    fields: &[
        f(1, "volumes", Msg(&CORE_V1_VOLUME), Repeated, true),
        f(2, "containers", Msg(&CORE_V1_CONTAINER), Repeated, false),
        f(3, "restartPolicy", Str, Value, true),
        f(4, "terminationGracePeriodSeconds", I64, Ptr, true),
        f(5, "activeDeadlineSeconds", I64, Ptr, true),
        f(6, "dnsPolicy", Str, Value, true),
        f(7, "nodeSelector", Str, Map, true),
        f(8, "serviceAccountName", Str, Value, true),
        f(9, "serviceAccount", Str, Value, true),
        f(10, "nodeName", Str, Value, true),
        f(11, "hostNetwork", Bool, Value, true),
        f(12, "hostPID", Bool, Value, true),
        f(13, "hostIPC", Bool, Value, true),
        f(
            14,
            "securityContext",
            Msg(&CORE_V1_POD_SECURITY_CONTEXT),
            Ptr,
            true,
        ),
        f(
            15,
            "imagePullSecrets",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Repeated,
            true,
        ),
        f(16, "hostname", Str, Value, true),
        f(17, "subdomain", Str, Value, true),
        f(18, "affinity", Msg(&CORE_V1_AFFINITY), Ptr, true),
        f(19, "schedulerName", Str, Value, true),
        f(
            20,
            "initContainers",
            Msg(&CORE_V1_CONTAINER),
            Repeated,
            true,
        ),
        f(21, "automountServiceAccountToken", Bool, Ptr, true),
        f(22, "tolerations", Msg(&CORE_V1_TOLERATION), Repeated, true),
        f(23, "hostAliases", Msg(&CORE_V1_HOST_ALIAS), Repeated, true),
        f(24, "priorityClassName", Str, Value, true),
        f(25, "priority", I32, Ptr, true),
        f(26, "dnsConfig", Msg(&CORE_V1_POD_DNSCONFIG), Ptr, true),
        f(27, "shareProcessNamespace", Bool, Ptr, true),
        f(
            28,
            "readinessGates",
            Msg(&CORE_V1_POD_READINESS_GATE),
            Repeated,
            true,
        ),
        f(29, "runtimeClassName", Str, Ptr, true),
        f(30, "enableServiceLinks", Bool, Ptr, true),
        f(31, "preemptionPolicy", Str, Ptr, true),
        f(32, "overhead", Quantity, Map, true),
        f(
            33,
            "topologySpreadConstraints",
            Msg(&CORE_V1_TOPOLOGY_SPREAD_CONSTRAINT),
            Repeated,
            true,
        ),
        f(
            34,
            "ephemeralContainers",
            Msg(&CORE_V1_EPHEMERAL_CONTAINER),
            Repeated,
            true,
        ),
        f(35, "setHostnameAsFQDN", Bool, Ptr, true),
        f(36, "os", Msg(&CORE_V1_POD_OS), Ptr, true),
        f(37, "hostUsers", Bool, Ptr, true),
        f(
            38,
            "schedulingGates",
            Msg(&CORE_V1_POD_SCHEDULING_GATE),
            Repeated,
            true,
        ),
        f(
            39,
            "resourceClaims",
            Msg(&CORE_V1_POD_RESOURCE_CLAIM),
            Repeated,
            true,
        ),
        f(
            40,
            "resources",
            Msg(&CORE_V1_RESOURCE_REQUIREMENTS),
            Ptr,
            true,
        ),
        f(41, "hostnameOverride", Str, Ptr, true),
        f(
            42,
            "workloadRef",
            Msg(&CORE_V1_WORKLOAD_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_VOLUME: Msg = Msg {
    name: "k8s.io.api.core.v1.Volume",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "", Msg(&CORE_V1_VOLUME_SOURCE), Inline, false),
    ],
};

pub(super) static CORE_V1_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeSource",
    fields: &[
        f(
            1,
            "hostPath",
            Msg(&CORE_V1_HOST_PATH_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            2,
            "emptyDir",
            Msg(&CORE_V1_EMPTY_DIR_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            3,
            "gcePersistentDisk",
            Msg(&CORE_V1_GCEPERSISTENT_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            4,
            "awsElasticBlockStore",
            Msg(&CORE_V1_AWSELASTIC_BLOCK_STORE_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            5,
            "gitRepo",
            Msg(&CORE_V1_GIT_REPO_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(6, "secret", Msg(&CORE_V1_SECRET_VOLUME_SOURCE), Ptr, true),
        f(7, "nfs", Msg(&CORE_V1_NFSVOLUME_SOURCE), Ptr, true),
        f(8, "iscsi", Msg(&CORE_V1_ISCSIVOLUME_SOURCE), Ptr, true),
        f(
            9,
            "glusterfs",
            Msg(&CORE_V1_GLUSTERFS_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            10,
            "persistentVolumeClaim",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(11, "rbd", Msg(&CORE_V1_RBDVOLUME_SOURCE), Ptr, true),
        f(
            12,
            "flexVolume",
            Msg(&CORE_V1_FLEX_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(13, "cinder", Msg(&CORE_V1_CINDER_VOLUME_SOURCE), Ptr, true),
        f(14, "cephfs", Msg(&CORE_V1_CEPH_FSVOLUME_SOURCE), Ptr, true),
        f(
            15,
            "flocker",
            Msg(&CORE_V1_FLOCKER_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            16,
            "downwardAPI",
            Msg(&CORE_V1_DOWNWARD_APIVOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(17, "fc", Msg(&CORE_V1_FCVOLUME_SOURCE), Ptr, true),
        f(
            18,
            "azureFile",
            Msg(&CORE_V1_AZURE_FILE_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            19,
            "configMap",
            Msg(&CORE_V1_CONFIG_MAP_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            20,
            "vsphereVolume",
            Msg(&CORE_V1_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            21,
            "quobyte",
            Msg(&CORE_V1_QUOBYTE_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            22,
            "azureDisk",
            Msg(&CORE_V1_AZURE_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            23,
            "photonPersistentDisk",
            Msg(&CORE_V1_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            24,
            "portworxVolume",
            Msg(&CORE_V1_PORTWORX_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            25,
            "scaleIO",
            Msg(&CORE_V1_SCALE_IOVOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            26,
            "projected",
            Msg(&CORE_V1_PROJECTED_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            27,
            "storageos",
            Msg(&CORE_V1_STORAGE_OSVOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(28, "csi", Msg(&CORE_V1_CSIVOLUME_SOURCE), Ptr, true),
        f(
            29,
            "ephemeral",
            Msg(&CORE_V1_EPHEMERAL_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(30, "image", Msg(&CORE_V1_IMAGE_VOLUME_SOURCE), Ptr, true),
    ],
};

pub(super) static CORE_V1_HOST_PATH_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.HostPathVolumeSource",
    fields: &[
        f(1, "path", Str, Value, false),
        f(2, "type", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_EMPTY_DIR_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.EmptyDirVolumeSource",
    fields: &[
        f(1, "medium", Str, Value, true),
        f(2, "sizeLimit", Quantity, Ptr, true),
    ],
};

pub(super) static CORE_V1_GCEPERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.GCEPersistentDiskVolumeSource",
    fields: &[
        f(1, "pdName", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(3, "partition", I32, Value, true),
        f(4, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_AWSELASTIC_BLOCK_STORE_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.AWSElasticBlockStoreVolumeSource",
    fields: &[
        f(1, "volumeID", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(3, "partition", I32, Value, true),
        f(4, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_GIT_REPO_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.GitRepoVolumeSource",
    fields: &[
        f(1, "repository", Str, Value, false),
        f(2, "revision", Str, Value, true),
        f(3, "directory", Str, Value, true),
    ],
};

pub(super) static CORE_V1_SECRET_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.SecretVolumeSource",
    fields: &[
        f(1, "secretName", Str, Value, true),
        f(2, "items", Msg(&CORE_V1_KEY_TO_PATH), Repeated, true),
        f(3, "defaultMode", I32, Ptr, true),
        f(4, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_KEY_TO_PATH: Msg = Msg {
    name: "k8s.io.api.core.v1.KeyToPath",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "path", Str, Value, false),
        f(3, "mode", I32, Ptr, true),
    ],
};

pub(super) static CORE_V1_NFSVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.NFSVolumeSource",
    fields: &[
        f(1, "server", Str, Value, false),
        f(2, "path", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_ISCSIVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ISCSIVolumeSource",
    fields: &[
        f(1, "targetPortal", Str, Value, false),
        f(2, "iqn", Str, Value, false),
        f(3, "lun", I32, Value, false),
        f(4, "iscsiInterface", Str, Value, true),
        f(5, "fsType", Str, Value, true),
        f(6, "readOnly", Bool, Value, true),
        f(7, "portals", Str, Repeated, true),
        f(8, "chapAuthDiscovery", Bool, Value, true),
        f(
            10,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(11, "chapAuthSession", Bool, Value, true),
        f(12, "initiatorName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_GLUSTERFS_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.GlusterfsVolumeSource",
    fields: &[
        f(1, "endpoints", Str, Value, false),
        f(2, "path", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaimVolumeSource",
    fields: &[
        f(1, "claimName", Str, Value, false),
        f(2, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_RBDVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.RBDVolumeSource",
    fields: &[
        f(1, "monitors", Str, Repeated, false),
        f(2, "image", Str, Value, false),
        f(3, "fsType", Str, Value, true),
        f(4, "pool", Str, Value, true),
        f(5, "user", Str, Value, true),
        f(6, "keyring", Str, Value, true),
        f(
            7,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(8, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_FLEX_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.FlexVolumeSource",
    fields: &[
        f(1, "driver", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(
            3,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(4, "readOnly", Bool, Value, true),
        f(5, "options", Str, Map, true),
    ],
};

pub(super) static CORE_V1_CINDER_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.CinderVolumeSource",
    fields: &[
        f(1, "volumeID", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(3, "readOnly", Bool, Value, true),
        f(
            4,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CEPH_FSVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.CephFSVolumeSource",
    fields: &[
        f(1, "monitors", Str, Repeated, false),
        f(2, "path", Str, Value, true),
        f(3, "user", Str, Value, true),
        f(4, "secretFile", Str, Value, true),
        f(
            5,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(6, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_FLOCKER_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.FlockerVolumeSource",
    fields: &[
        f(1, "datasetName", Str, Value, true),
        f(2, "datasetUUID", Str, Value, true),
    ],
};

pub(super) static CORE_V1_DOWNWARD_APIVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.DownwardAPIVolumeSource",
    fields: &[
        f(
            1,
            "items",
            Msg(&CORE_V1_DOWNWARD_APIVOLUME_FILE),
            Repeated,
            true,
        ),
        f(2, "defaultMode", I32, Ptr, true),
    ],
};

pub(super) static CORE_V1_DOWNWARD_APIVOLUME_FILE: Msg = Msg {
    name: "k8s.io.api.core.v1.DownwardAPIVolumeFile",
    fields: &[
        f(1, "path", Str, Value, false),
        f(
            2,
            "fieldRef",
            Msg(&CORE_V1_OBJECT_FIELD_SELECTOR),
            Ptr,
            true,
        ),
        f(
            3,
            "resourceFieldRef",
            Msg(&CORE_V1_RESOURCE_FIELD_SELECTOR),
            Ptr,
            true,
        ),
        f(4, "mode", I32, Ptr, true),
    ],
};

pub(super) static CORE_V1_OBJECT_FIELD_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.ObjectFieldSelector",
    fields: &[
        f(1, "apiVersion", Str, Value, true),
        f(2, "fieldPath", Str, Value, false),
    ],
};

pub(super) static CORE_V1_RESOURCE_FIELD_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceFieldSelector",
    fields: &[
        f(1, "containerName", Str, Value, true),
        f(2, "resource", Str, Value, false),
        f(3, "divisor", Quantity, Value, true),
    ],
};

pub(super) static CORE_V1_FCVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.FCVolumeSource",
    fields: &[
        f(1, "targetWWNs", Str, Repeated, true),
        f(2, "lun", I32, Ptr, true),
        f(3, "fsType", Str, Value, true),
        f(4, "readOnly", Bool, Value, true),
        f(5, "wwids", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_AZURE_FILE_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.AzureFileVolumeSource",
    fields: &[
        f(1, "secretName", Str, Value, false),
        f(2, "shareName", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_CONFIG_MAP_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMapVolumeSource",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "items", Msg(&CORE_V1_KEY_TO_PATH), Repeated, true),
        f(3, "defaultMode", I32, Ptr, true),
        f(4, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.VsphereVirtualDiskVolumeSource",
    fields: &[
        f(1, "volumePath", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(3, "storagePolicyName", Str, Value, true),
        f(4, "storagePolicyID", Str, Value, true),
    ],
};

pub(super) static CORE_V1_QUOBYTE_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.QuobyteVolumeSource",
    fields: &[
        f(1, "registry", Str, Value, false),
        f(2, "volume", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
        f(4, "user", Str, Value, true),
        f(5, "group", Str, Value, true),
        f(6, "tenant", Str, Value, true),
    ],
};

pub(super) static CORE_V1_AZURE_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.AzureDiskVolumeSource",
    fields: &[
        f(1, "diskName", Str, Value, false),
        f(2, "diskURI", Str, Value, false),
        f(3, "cachingMode", Str, Ptr, true),
        f(4, "fsType", Str, Ptr, true),
        f(5, "readOnly", Bool, Ptr, true),
        f(6, "kind", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.PhotonPersistentDiskVolumeSource",
    fields: &[
        f(1, "pdID", Str, Value, false),
        f(2, "fsType", Str, Value, true),
    ],
};

pub(super) static CORE_V1_PROJECTED_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ProjectedVolumeSource",
    fields: &[
        f(
            1,
            "sources",
            Msg(&CORE_V1_VOLUME_PROJECTION),
            Repeated,
            false,
        ),
        f(2, "defaultMode", I32, Ptr, true),
    ],
};

pub(super) static CORE_V1_VOLUME_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeProjection",
    fields: &[
        f(1, "secret", Msg(&CORE_V1_SECRET_PROJECTION), Ptr, true),
        f(
            2,
            "downwardAPI",
            Msg(&CORE_V1_DOWNWARD_APIPROJECTION),
            Ptr,
            true,
        ),
        f(
            3,
            "configMap",
            Msg(&CORE_V1_CONFIG_MAP_PROJECTION),
            Ptr,
            true,
        ),
        f(
            4,
            "serviceAccountToken",
            Msg(&CORE_V1_SERVICE_ACCOUNT_TOKEN_PROJECTION),
            Ptr,
            true,
        ),
        f(
            5,
            "clusterTrustBundle",
            Msg(&CORE_V1_CLUSTER_TRUST_BUNDLE_PROJECTION),
            Ptr,
            true,
        ),
        f(
            6,
            "podCertificate",
            Msg(&CORE_V1_POD_CERTIFICATE_PROJECTION),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_SECRET_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.SecretProjection",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "items", Msg(&CORE_V1_KEY_TO_PATH), Repeated, true),
        f(4, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_DOWNWARD_APIPROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.DownwardAPIProjection",
    fields: &[f(
        1,
        "items",
        Msg(&CORE_V1_DOWNWARD_APIVOLUME_FILE),
        Repeated,
        true,
    )],
};

pub(super) static CORE_V1_CONFIG_MAP_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMapProjection",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "items", Msg(&CORE_V1_KEY_TO_PATH), Repeated, true),
        f(4, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SERVICE_ACCOUNT_TOKEN_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.ServiceAccountTokenProjection",
    fields: &[
        f(1, "audience", Str, Value, true),
        f(2, "expirationSeconds", I64, Ptr, true),
        f(3, "path", Str, Value, false),
    ],
};

pub(super) static CORE_V1_CLUSTER_TRUST_BUNDLE_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.ClusterTrustBundleProjection",
    fields: &[
        f(1, "name", Str, Ptr, true),
        f(2, "signerName", Str, Ptr, true),
        f(3, "labelSelector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(4, "path", Str, Value, false),
        f(5, "optional", Bool, Ptr, true),
    ],
};

pub(super) static META_V1_LABEL_SELECTOR: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelector",
    fields: &[
        f(1, "matchLabels", Str, Map, true),
        f(
            2,
            "matchExpressions",
            Msg(&META_V1_LABEL_SELECTOR_REQUIREMENT),
            Repeated,
            true,
        ),
    ],
};

pub(super) static META_V1_LABEL_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "operator", Str, Value, false),
        f(3, "values", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_POD_CERTIFICATE_PROJECTION: Msg = Msg {
    name: "k8s.io.api.core.v1.PodCertificateProjection",
    fields: &[
        f(1, "signerName", Str, Value, true),
        f(2, "keyType", Str, Value, true),
        f(3, "maxExpirationSeconds", I32, Ptr, true),
        f(4, "credentialBundlePath", Str, Value, true),
        f(5, "keyPath", Str, Value, true),
        f(6, "certificateChainPath", Str, Value, true),
        f(7, "userAnnotations", Str, Map, true),
    ],
};

pub(super) static CORE_V1_PORTWORX_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.PortworxVolumeSource",
    fields: &[
        f(1, "volumeID", Str, Value, false),
        f(2, "fsType", Str, Value, true),
        f(3, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_SCALE_IOVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ScaleIOVolumeSource",
    fields: &[
        f(1, "gateway", Str, Value, false),
        f(2, "system", Str, Value, false),
        f(
            3,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            false,
        ),
        f(4, "sslEnabled", Bool, Value, true),
        f(5, "protectionDomain", Str, Value, true),
        f(6, "storagePool", Str, Value, true),
        f(7, "storageMode", Str, Value, true),
        f(8, "volumeName", Str, Value, true),
        f(9, "fsType", Str, Value, true),
        f(10, "readOnly", Bool, Value, true),
    ],
};

pub(super) static CORE_V1_STORAGE_OSVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.StorageOSVolumeSource",
    fields: &[
        f(1, "volumeName", Str, Value, true),
        f(2, "volumeNamespace", Str, Value, true),
        f(3, "fsType", Str, Value, true),
        f(4, "readOnly", Bool, Value, true),
        f(
            5,
            "secretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CSIVOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.CSIVolumeSource",
    fields: &[
        f(1, "driver", Str, Value, false),
        f(2, "readOnly", Bool, Ptr, true),
        f(3, "fsType", Str, Ptr, true),
        f(4, "volumeAttributes", Str, Map, true),
        f(
            5,
            "nodePublishSecretRef",
            Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_EPHEMERAL_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.EphemeralVolumeSource",
    fields: &[f(
        1,
        "volumeClaimTemplate",
        Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_TEMPLATE),
        Ptr,
        true,
    )],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM_TEMPLATE: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaimTemplate",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_SPEC),
            Value,
            false,
        ),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaimSpec",
    fields: &[
        f(1, "accessModes", Str, Repeated, true),
        f(
            2,
            "resources",
            Msg(&CORE_V1_VOLUME_RESOURCE_REQUIREMENTS),
            Value,
            true,
        ),
        f(3, "volumeName", Str, Value, true),
        f(4, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(5, "storageClassName", Str, Ptr, true),
        f(6, "volumeMode", Str, Ptr, true),
        f(
            7,
            "dataSource",
            Msg(&CORE_V1_TYPED_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(
            8,
            "dataSourceRef",
            Msg(&CORE_V1_TYPED_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(9, "volumeAttributesClassName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_VOLUME_RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeResourceRequirements",
    fields: &[
        f(1, "limits", Quantity, Map, true),
        f(2, "requests", Quantity, Map, true),
    ],
};

pub(super) static CORE_V1_TYPED_LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.TypedLocalObjectReference",
    fields: &[
        f(1, "apiGroup", Str, Ptr, false),
        f(2, "kind", Str, Value, false),
        f(3, "name", Str, Value, false),
    ],
};

pub(super) static CORE_V1_TYPED_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.TypedObjectReference",
    fields: &[
        f(1, "apiGroup", Str, Ptr, false),
        f(2, "kind", Str, Value, false),
        f(3, "name", Str, Value, false),
        f(4, "namespace", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_IMAGE_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ImageVolumeSource",
    fields: &[
        f(1, "reference", Str, Value, true),
        f(2, "pullPolicy", Str, Value, true),
    ],
};

pub(super) static CORE_V1_CONTAINER: Msg = Msg {
    name: "k8s.io.api.core.v1.Container",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "image", Str, Value, true),
        f(3, "command", Str, Repeated, true),
        f(4, "args", Str, Repeated, true),
        f(5, "workingDir", Str, Value, true),
        f(6, "ports", Msg(&CORE_V1_CONTAINER_PORT), Repeated, true),
        f(7, "env", Msg(&CORE_V1_ENV_VAR), Repeated, true),
        f(
            8,
            "resources",
            Msg(&CORE_V1_RESOURCE_REQUIREMENTS),
            Value,
            true,
        ),
        f(
            9,
            "volumeMounts",
            Msg(&CORE_V1_VOLUME_MOUNT),
            Repeated,
            true,
        ),
        f(10, "livenessProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(11, "readinessProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(12, "lifecycle", Msg(&CORE_V1_LIFECYCLE), Ptr, true),
        f(13, "terminationMessagePath", Str, Value, true),
        f(14, "imagePullPolicy", Str, Value, true),
        f(
            15,
            "securityContext",
            Msg(&CORE_V1_SECURITY_CONTEXT),
            Ptr,
            true,
        ),
        f(16, "stdin", Bool, Value, true),
        f(17, "stdinOnce", Bool, Value, true),
        f(18, "tty", Bool, Value, true),
        f(19, "envFrom", Msg(&CORE_V1_ENV_FROM_SOURCE), Repeated, true),
        f(20, "terminationMessagePolicy", Str, Value, true),
        f(
            21,
            "volumeDevices",
            Msg(&CORE_V1_VOLUME_DEVICE),
            Repeated,
            true,
        ),
        f(22, "startupProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(
            23,
            "resizePolicy",
            Msg(&CORE_V1_CONTAINER_RESIZE_POLICY),
            Repeated,
            true,
        ),
        f(24, "restartPolicy", Str, Ptr, true),
        f(
            25,
            "restartPolicyRules",
            Msg(&CORE_V1_CONTAINER_RESTART_RULE),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CONTAINER_PORT: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerPort",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "hostPort", I32, Value, true),
        f(3, "containerPort", I32, Value, false),
        f(4, "protocol", Str, Value, true),
        f(5, "hostIP", Str, Value, true),
    ],
};

pub(super) static CORE_V1_ENV_FROM_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.EnvFromSource",
    fields: &[
        f(1, "prefix", Str, Value, true),
        f(
            2,
            "configMapRef",
            Msg(&CORE_V1_CONFIG_MAP_ENV_SOURCE),
            Ptr,
            true,
        ),
        f(3, "secretRef", Msg(&CORE_V1_SECRET_ENV_SOURCE), Ptr, true),
    ],
};

pub(super) static CORE_V1_CONFIG_MAP_ENV_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMapEnvSource",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SECRET_ENV_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.SecretEnvSource",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_ENV_VAR: Msg = Msg {
    name: "k8s.io.api.core.v1.EnvVar",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "value", Str, Value, true),
        f(3, "valueFrom", Msg(&CORE_V1_ENV_VAR_SOURCE), Ptr, true),
    ],
};

pub(super) static CORE_V1_ENV_VAR_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.EnvVarSource",
    fields: &[
        f(
            1,
            "fieldRef",
            Msg(&CORE_V1_OBJECT_FIELD_SELECTOR),
            Ptr,
            true,
        ),
        f(
            2,
            "resourceFieldRef",
            Msg(&CORE_V1_RESOURCE_FIELD_SELECTOR),
            Ptr,
            true,
        ),
        f(
            3,
            "configMapKeyRef",
            Msg(&CORE_V1_CONFIG_MAP_KEY_SELECTOR),
            Ptr,
            true,
        ),
        f(
            4,
            "secretKeyRef",
            Msg(&CORE_V1_SECRET_KEY_SELECTOR),
            Ptr,
            true,
        ),
        f(5, "fileKeyRef", Msg(&CORE_V1_FILE_KEY_SELECTOR), Ptr, true),
    ],
};

pub(super) static CORE_V1_CONFIG_MAP_KEY_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMapKeySelector",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "key", Str, Value, false),
        f(3, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SECRET_KEY_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.SecretKeySelector",
    fields: &[
        f(1, "", Msg(&CORE_V1_LOCAL_OBJECT_REFERENCE), Inline, false),
        f(2, "key", Str, Value, false),
        f(3, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_FILE_KEY_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.FileKeySelector",
    fields: &[
        f(1, "volumeName", Str, Value, false),
        f(2, "path", Str, Value, false),
        f(3, "key", Str, Value, false),
        f(4, "optional", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceRequirements",
    fields: &[
        f(1, "limits", Quantity, Map, true),
        f(2, "requests", Quantity, Map, true),
        f(3, "claims", Msg(&CORE_V1_RESOURCE_CLAIM), Repeated, true),
    ],
};

pub(super) static CORE_V1_RESOURCE_CLAIM: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceClaim",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "request", Str, Value, true),
    ],
};

pub(super) static CORE_V1_CONTAINER_RESIZE_POLICY: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerResizePolicy",
    fields: &[
        f(1, "resourceName", Str, Value, false),
        f(2, "restartPolicy", Str, Value, false),
    ],
};

pub(super) static CORE_V1_CONTAINER_RESTART_RULE: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerRestartRule",
    fields: &[
        f(1, "action", Str, Value, true),
        f(
            2,
            "exitCodes",
            Msg(&CORE_V1_CONTAINER_RESTART_RULE_ON_EXIT_CODES),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CONTAINER_RESTART_RULE_ON_EXIT_CODES: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerRestartRuleOnExitCodes",
    fields: &[
        f(1, "operator", Str, Value, true),
        f(2, "values", I32, Repeated, true),
    ],
};

pub(super) static CORE_V1_VOLUME_MOUNT: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeMount",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "readOnly", Bool, Value, true),
        f(3, "mountPath", Str, Value, false),
        f(4, "subPath", Str, Value, true),
        f(5, "mountPropagation", Str, Ptr, true),
        f(6, "subPathExpr", Str, Value, true),
        f(7, "recursiveReadOnly", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_VOLUME_DEVICE: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeDevice",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "devicePath", Str, Value, false),
    ],
};

pub(super) static CORE_V1_PROBE: Msg = Msg {
    name: "k8s.io.api.core.v1.Probe",
    fields: &[
        f(1, "", Msg(&CORE_V1_PROBE_HANDLER), Inline, false),
        f(2, "initialDelaySeconds", I32, Value, true),
        f(3, "timeoutSeconds", I32, Value, true),
        f(4, "periodSeconds", I32, Value, true),
        f(5, "successThreshold", I32, Value, true),
        f(6, "failureThreshold", I32, Value, true),
        f(7, "terminationGracePeriodSeconds", I64, Ptr, true),
    ],
};

pub(super) static CORE_V1_PROBE_HANDLER: Msg = Msg {
    name: "k8s.io.api.core.v1.ProbeHandler",
    fields: &[
        f(1, "exec", Msg(&CORE_V1_EXEC_ACTION), Ptr, true),
        f(2, "httpGet", Msg(&CORE_V1_HTTPGET_ACTION), Ptr, true),
        f(3, "tcpSocket", Msg(&CORE_V1_TCPSOCKET_ACTION), Ptr, true),
        f(4, "grpc", Msg(&CORE_V1_GRPCACTION), Ptr, true),
    ],
};

pub(super) static CORE_V1_EXEC_ACTION: Msg = Msg {
    name: "k8s.io.api.core.v1.ExecAction",
    fields: &[f(1, "command", Str, Repeated, true)],
};

pub(super) static CORE_V1_HTTPGET_ACTION: Msg = Msg {
    name: "k8s.io.api.core.v1.HTTPGetAction",
    fields: &[
        f(1, "path", Str, Value, true),
        f(2, "port", IntOrString, Value, false),
        f(3, "host", Str, Value, true),
        f(4, "scheme", Str, Value, true),
        f(5, "httpHeaders", Msg(&CORE_V1_HTTPHEADER), Repeated, true),
    ],
};

pub(super) static CORE_V1_HTTPHEADER: Msg = Msg {
    name: "k8s.io.api.core.v1.HTTPHeader",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "value", Str, Value, false),
    ],
};

pub(super) static CORE_V1_TCPSOCKET_ACTION: Msg = Msg {
    name: "k8s.io.api.core.v1.TCPSocketAction",
    fields: &[
        f(1, "port", IntOrString, Value, false),
        f(2, "host", Str, Value, true),
    ],
};

pub(super) static CORE_V1_GRPCACTION: Msg = Msg {
    name: "k8s.io.api.core.v1.GRPCAction",
    fields: &[
        f(1, "port", I32, Value, false),
        f(2, "service", Str, Ptr, false),
    ],
};

pub(super) static CORE_V1_LIFECYCLE: Msg = Msg {
    name: "k8s.io.api.core.v1.Lifecycle",
    fields: &[
        f(1, "postStart", Msg(&CORE_V1_LIFECYCLE_HANDLER), Ptr, true),
        f(2, "preStop", Msg(&CORE_V1_LIFECYCLE_HANDLER), Ptr, true),
        f(3, "stopSignal", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_LIFECYCLE_HANDLER: Msg = Msg {
    name: "k8s.io.api.core.v1.LifecycleHandler",
    fields: &[
        f(1, "exec", Msg(&CORE_V1_EXEC_ACTION), Ptr, true),
        f(2, "httpGet", Msg(&CORE_V1_HTTPGET_ACTION), Ptr, true),
        f(3, "tcpSocket", Msg(&CORE_V1_TCPSOCKET_ACTION), Ptr, true),
        f(4, "sleep", Msg(&CORE_V1_SLEEP_ACTION), Ptr, true),
    ],
};

pub(super) static CORE_V1_SLEEP_ACTION: Msg = Msg {
    name: "k8s.io.api.core.v1.SleepAction",
    fields: &[f(1, "seconds", I64, Value, false)],
};

pub(super) static CORE_V1_SECURITY_CONTEXT: Msg = Msg {
    name: "k8s.io.api.core.v1.SecurityContext",
    fields: &[
        f(1, "capabilities", Msg(&CORE_V1_CAPABILITIES), Ptr, true),
        f(2, "privileged", Bool, Ptr, true),
        f(
            3,
            "seLinuxOptions",
            Msg(&CORE_V1_SELINUX_OPTIONS),
            Ptr,
            true,
        ),
        f(4, "runAsUser", I64, Ptr, true),
        f(5, "runAsNonRoot", Bool, Ptr, true),
        f(6, "readOnlyRootFilesystem", Bool, Ptr, true),
        f(7, "allowPrivilegeEscalation", Bool, Ptr, true),
        f(8, "runAsGroup", I64, Ptr, true),
        f(9, "procMount", Str, Ptr, true),
        f(
            10,
            "windowsOptions",
            Msg(&CORE_V1_WINDOWS_SECURITY_CONTEXT_OPTIONS),
            Ptr,
            true,
        ),
        f(
            11,
            "seccompProfile",
            Msg(&CORE_V1_SECCOMP_PROFILE),
            Ptr,
            true,
        ),
        f(
            12,
            "appArmorProfile",
            Msg(&CORE_V1_APP_ARMOR_PROFILE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CAPABILITIES: Msg = Msg {
    name: "k8s.io.api.core.v1.Capabilities",
    fields: &[
        f(1, "add", Str, Repeated, true),
        f(2, "drop", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_SELINUX_OPTIONS: Msg = Msg {
    name: "k8s.io.api.core.v1.SELinuxOptions",
    fields: &[
        f(1, "user", Str, Value, true),
        f(2, "role", Str, Value, true),
        f(3, "type", Str, Value, true),
        f(4, "level", Str, Value, true),
    ],
};

pub(super) static CORE_V1_WINDOWS_SECURITY_CONTEXT_OPTIONS: Msg = Msg {
    name: "k8s.io.api.core.v1.WindowsSecurityContextOptions",
    fields: &[
        f(1, "gmsaCredentialSpecName", Str, Ptr, true),
        f(2, "gmsaCredentialSpec", Str, Ptr, true),
        f(3, "runAsUserName", Str, Ptr, true),
        f(4, "hostProcess", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_SECCOMP_PROFILE: Msg = Msg {
    name: "k8s.io.api.core.v1.SeccompProfile",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "localhostProfile", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_APP_ARMOR_PROFILE: Msg = Msg {
    name: "k8s.io.api.core.v1.AppArmorProfile",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "localhostProfile", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_EPHEMERAL_CONTAINER: Msg = Msg {
    name: "k8s.io.api.core.v1.EphemeralContainer",
    fields: &[
        f(
            1,
            "",
            Msg(&CORE_V1_EPHEMERAL_CONTAINER_COMMON),
            Inline,
            false,
        ),
        f(2, "targetContainerName", Str, Value, true),
    ],
};

pub(super) static CORE_V1_EPHEMERAL_CONTAINER_COMMON: Msg = Msg {
    name: "k8s.io.api.core.v1.EphemeralContainerCommon",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "image", Str, Value, true),
        f(3, "command", Str, Repeated, true),
        f(4, "args", Str, Repeated, true),
        f(5, "workingDir", Str, Value, true),
        f(6, "ports", Msg(&CORE_V1_CONTAINER_PORT), Repeated, true),
        f(7, "env", Msg(&CORE_V1_ENV_VAR), Repeated, true),
        f(
            8,
            "resources",
            Msg(&CORE_V1_RESOURCE_REQUIREMENTS),
            Value,
            true,
        ),
        f(
            9,
            "volumeMounts",
            Msg(&CORE_V1_VOLUME_MOUNT),
            Repeated,
            true,
        ),
        f(10, "livenessProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(11, "readinessProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(12, "lifecycle", Msg(&CORE_V1_LIFECYCLE), Ptr, true),
        f(13, "terminationMessagePath", Str, Value, true),
        f(14, "imagePullPolicy", Str, Value, true),
        f(
            15,
            "securityContext",
            Msg(&CORE_V1_SECURITY_CONTEXT),
            Ptr,
            true,
        ),
        f(16, "stdin", Bool, Value, true),
        f(17, "stdinOnce", Bool, Value, true),
        f(18, "tty", Bool, Value, true),
        f(19, "envFrom", Msg(&CORE_V1_ENV_FROM_SOURCE), Repeated, true),
        f(20, "terminationMessagePolicy", Str, Value, true),
        f(
            21,
            "volumeDevices",
            Msg(&CORE_V1_VOLUME_DEVICE),
            Repeated,
            true,
        ),
        f(22, "startupProbe", Msg(&CORE_V1_PROBE), Ptr, true),
        f(
            23,
            "resizePolicy",
            Msg(&CORE_V1_CONTAINER_RESIZE_POLICY),
            Repeated,
            true,
        ),
        f(24, "restartPolicy", Str, Ptr, true),
        f(
            25,
            "restartPolicyRules",
            Msg(&CORE_V1_CONTAINER_RESTART_RULE),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_POD_SECURITY_CONTEXT: Msg = Msg {
    name: "k8s.io.api.core.v1.PodSecurityContext",
    fields: &[
        f(
            1,
            "seLinuxOptions",
            Msg(&CORE_V1_SELINUX_OPTIONS),
            Ptr,
            true,
        ),
        f(2, "runAsUser", I64, Ptr, true),
        f(3, "runAsNonRoot", Bool, Ptr, true),
        f(4, "supplementalGroups", I64, Repeated, true),
        f(5, "fsGroup", I64, Ptr, true),
        f(6, "runAsGroup", I64, Ptr, true),
        f(7, "sysctls", Msg(&CORE_V1_SYSCTL), Repeated, true),
        f(
            8,
            "windowsOptions",
            Msg(&CORE_V1_WINDOWS_SECURITY_CONTEXT_OPTIONS),
            Ptr,
            true,
        ),
        f(9, "fsGroupChangePolicy", Str, Ptr, true),
        f(
            10,
            "seccompProfile",
            Msg(&CORE_V1_SECCOMP_PROFILE),
            Ptr,
            true,
        ),
        f(
            11,
            "appArmorProfile",
            Msg(&CORE_V1_APP_ARMOR_PROFILE),
            Ptr,
            true,
        ),
        f(12, "supplementalGroupsPolicy", Str, Ptr, true),
        f(13, "seLinuxChangePolicy", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_SYSCTL: Msg = Msg {
    name: "k8s.io.api.core.v1.Sysctl",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "value", Str, Value, false),
    ],
};

pub(super) static CORE_V1_AFFINITY: Msg = Msg {
    name: "k8s.io.api.core.v1.Affinity",
    fields: &[
        f(1, "nodeAffinity", Msg(&CORE_V1_NODE_AFFINITY), Ptr, true),
        f(2, "podAffinity", Msg(&CORE_V1_POD_AFFINITY), Ptr, true),
        f(
            3,
            "podAntiAffinity",
            Msg(&CORE_V1_POD_ANTI_AFFINITY),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_NODE_AFFINITY: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeAffinity",
    fields: &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_NODE_SELECTOR),
            Ptr,
            true,
        ),
        f(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_PREFERRED_SCHEDULING_TERM),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_NODE_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSelector",
    fields: &[f(
        1,
        "nodeSelectorTerms",
        Msg(&CORE_V1_NODE_SELECTOR_TERM),
        Repeated,
        false,
    )],
};

pub(super) static CORE_V1_NODE_SELECTOR_TERM: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSelectorTerm",
    fields: &[
        f(
            1,
            "matchExpressions",
            Msg(&CORE_V1_NODE_SELECTOR_REQUIREMENT),
            Repeated,
            true,
        ),
        f(
            2,
            "matchFields",
            Msg(&CORE_V1_NODE_SELECTOR_REQUIREMENT),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_NODE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSelectorRequirement",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "operator", Str, Value, false),
        f(3, "values", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_PREFERRED_SCHEDULING_TERM: Msg = Msg {
    name: "k8s.io.api.core.v1.PreferredSchedulingTerm",
    fields: &[
        f(1, "weight", I32, Value, false),
        f(
            2,
            "preference",
            Msg(&CORE_V1_NODE_SELECTOR_TERM),
            Value,
            false,
        ),
    ],
};

pub(super) static CORE_V1_POD_AFFINITY: Msg = Msg {
    name: "k8s.io.api.core.v1.PodAffinity",
    fields: &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_POD_AFFINITY_TERM),
            Repeated,
            true,
        ),
        f(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_WEIGHTED_POD_AFFINITY_TERM),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_POD_AFFINITY_TERM: Msg = Msg {
    name: "k8s.io.api.core.v1.PodAffinityTerm",
    fields: &[
        f(1, "labelSelector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(2, "namespaces", Str, Repeated, true),
        f(3, "topologyKey", Str, Value, false),
        f(
            4,
            "namespaceSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(5, "matchLabelKeys", Str, Repeated, true),
        f(6, "mismatchLabelKeys", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_WEIGHTED_POD_AFFINITY_TERM: Msg = Msg {
    name: "k8s.io.api.core.v1.WeightedPodAffinityTerm",
    fields: &[
        f(1, "weight", I32, Value, false),
        f(
            2,
            "podAffinityTerm",
            Msg(&CORE_V1_POD_AFFINITY_TERM),
            Value,
            false,
        ),
    ],
};

pub(super) static CORE_V1_POD_ANTI_AFFINITY: Msg = Msg {
    name: "k8s.io.api.core.v1.PodAntiAffinity",
    fields: &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_POD_AFFINITY_TERM),
            Repeated,
            true,
        ),
        f(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&CORE_V1_WEIGHTED_POD_AFFINITY_TERM),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_TOLERATION: Msg = Msg {
    name: "k8s.io.api.core.v1.Toleration",
    fields: &[
        f(1, "key", Str, Value, true),
        f(2, "operator", Str, Value, true),
        f(3, "value", Str, Value, true),
        f(4, "effect", Str, Value, true),
        f(5, "tolerationSeconds", I64, Ptr, true),
    ],
};

pub(super) static CORE_V1_HOST_ALIAS: Msg = Msg {
    name: "k8s.io.api.core.v1.HostAlias",
    fields: &[
        f(1, "ip", Str, Value, false),
        f(2, "hostnames", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_POD_DNSCONFIG: Msg = Msg {
    name: "k8s.io.api.core.v1.PodDNSConfig",
    fields: &[
        f(1, "nameservers", Str, Repeated, true),
        f(2, "searches", Str, Repeated, true),
        f(
            3,
            "options",
            Msg(&CORE_V1_POD_DNSCONFIG_OPTION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_POD_DNSCONFIG_OPTION: Msg = Msg {
    name: "k8s.io.api.core.v1.PodDNSConfigOption",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "value", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_POD_READINESS_GATE: Msg = Msg {
    name: "k8s.io.api.core.v1.PodReadinessGate",
    fields: &[f(1, "conditionType", Str, Value, false)],
};

pub(super) static CORE_V1_TOPOLOGY_SPREAD_CONSTRAINT: Msg = Msg {
    name: "k8s.io.api.core.v1.TopologySpreadConstraint",
    fields: &[
        f(1, "maxSkew", I32, Value, false),
        f(2, "topologyKey", Str, Value, false),
        f(3, "whenUnsatisfiable", Str, Value, false),
        f(4, "labelSelector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(5, "minDomains", I32, Ptr, true),
        f(6, "nodeAffinityPolicy", Str, Ptr, true),
        f(7, "nodeTaintsPolicy", Str, Ptr, true),
        f(8, "matchLabelKeys", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_POD_OS: Msg = Msg {
    name: "k8s.io.api.core.v1.PodOS",
    fields: &[f(1, "name", Str, Value, false)],
};

pub(super) static CORE_V1_POD_SCHEDULING_GATE: Msg = Msg {
    name: "k8s.io.api.core.v1.PodSchedulingGate",
    fields: &[f(1, "name", Str, Value, false)],
};

pub(super) static CORE_V1_POD_RESOURCE_CLAIM: Msg = Msg {
    name: "k8s.io.api.core.v1.PodResourceClaim",
    fields: &[
        f(1, "name", Str, Value, false),
        f(3, "resourceClaimName", Str, Ptr, true),
        f(4, "resourceClaimTemplateName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_WORKLOAD_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.WorkloadReference",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "podGroup", Str, Value, false),
        f(3, "podGroupReplicaKey", Str, Value, true),
    ],
};

pub(super) static CORE_V1_POD_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PodStatus",
    fields: &[
        f(1, "phase", Str, Value, true),
        f(2, "conditions", Msg(&CORE_V1_POD_CONDITION), Repeated, true),
        f(3, "message", Str, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "hostIP", Str, Value, true),
        f(6, "podIP", Str, Value, true),
        f(7, "startTime", Time, Ptr, true),
        f(
            8,
            "containerStatuses",
            Msg(&CORE_V1_CONTAINER_STATUS),
            Repeated,
            true,
        ),
        f(9, "qosClass", Str, Value, true),
        f(
            10,
            "initContainerStatuses",
            Msg(&CORE_V1_CONTAINER_STATUS),
            Repeated,
            true,
        ),
        f(11, "nominatedNodeName", Str, Value, true),
        f(12, "podIPs", Msg(&CORE_V1_POD_IP), Repeated, true),
        f(
            13,
            "ephemeralContainerStatuses",
            Msg(&CORE_V1_CONTAINER_STATUS),
            Repeated,
            true,
        ),
        f(14, "resize", Str, Value, true),
        f(
            15,
            "resourceClaimStatuses",
            Msg(&CORE_V1_POD_RESOURCE_CLAIM_STATUS),
            Repeated,
            true,
        ),
        f(16, "hostIPs", Msg(&CORE_V1_HOST_IP), Repeated, true),
        f(17, "observedGeneration", I64, Value, true),
        f(
            18,
            "extendedResourceClaimStatus",
            Msg(&CORE_V1_POD_EXTENDED_RESOURCE_CLAIM_STATUS),
            Ptr,
            true,
        ),
        f(19, "allocatedResources", Quantity, Map, true),
        f(
            20,
            "resources",
            Msg(&CORE_V1_RESOURCE_REQUIREMENTS),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_POD_CONDITION: Msg = Msg {
    name: "k8s.io.api.core.v1.PodCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastProbeTime", Time, Value, true),
        f(4, "lastTransitionTime", Time, Value, true),
        f(5, "reason", Str, Value, true),
        f(6, "message", Str, Value, true),
        f(7, "observedGeneration", I64, Value, true),
    ],
};

pub(super) static CORE_V1_HOST_IP: Msg = Msg {
    name: "k8s.io.api.core.v1.HostIP",
    fields: &[f(1, "ip", Str, Value, false)],
};

pub(super) static CORE_V1_POD_IP: Msg = Msg {
    name: "k8s.io.api.core.v1.PodIP",
    fields: &[f(1, "ip", Str, Value, false)],
};

pub(super) static CORE_V1_CONTAINER_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "state", Msg(&CORE_V1_CONTAINER_STATE), Value, true),
        f(3, "lastState", Msg(&CORE_V1_CONTAINER_STATE), Value, true),
        f(4, "ready", Bool, Value, false),
        f(5, "restartCount", I32, Value, false),
        f(6, "image", Str, Value, false),
        f(7, "imageID", Str, Value, false),
        f(8, "containerID", Str, Value, true),
        f(9, "started", Bool, Ptr, true),
        f(10, "allocatedResources", Quantity, Map, true),
        f(
            11,
            "resources",
            Msg(&CORE_V1_RESOURCE_REQUIREMENTS),
            Ptr,
            true,
        ),
        f(
            12,
            "volumeMounts",
            Msg(&CORE_V1_VOLUME_MOUNT_STATUS),
            Repeated,
            true,
        ),
        f(13, "user", Msg(&CORE_V1_CONTAINER_USER), Ptr, true),
        f(
            14,
            "allocatedResourcesStatus",
            Msg(&CORE_V1_RESOURCE_STATUS),
            Repeated,
            true,
        ),
        f(15, "stopSignal", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_CONTAINER_STATE: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerState",
    fields: &[
        f(
            1,
            "waiting",
            Msg(&CORE_V1_CONTAINER_STATE_WAITING),
            Ptr,
            true,
        ),
        f(
            2,
            "running",
            Msg(&CORE_V1_CONTAINER_STATE_RUNNING),
            Ptr,
            true,
        ),
        f(
            3,
            "terminated",
            Msg(&CORE_V1_CONTAINER_STATE_TERMINATED),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_CONTAINER_STATE_WAITING: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerStateWaiting",
    fields: &[
        f(1, "reason", Str, Value, true),
        f(2, "message", Str, Value, true),
    ],
};

pub(super) static CORE_V1_CONTAINER_STATE_RUNNING: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerStateRunning",
    fields: &[f(1, "startedAt", Time, Value, true)],
};

pub(super) static CORE_V1_CONTAINER_STATE_TERMINATED: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerStateTerminated",
    fields: &[
        f(1, "exitCode", I32, Value, false),
        f(2, "signal", I32, Value, true),
        f(3, "reason", Str, Value, true),
        f(4, "message", Str, Value, true),
        f(5, "startedAt", Time, Value, true),
        f(6, "finishedAt", Time, Value, true),
        f(7, "containerID", Str, Value, true),
    ],
};

pub(super) static CORE_V1_VOLUME_MOUNT_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeMountStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "mountPath", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
        f(4, "recursiveReadOnly", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_CONTAINER_USER: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerUser",
    fields: &[f(1, "linux", Msg(&CORE_V1_LINUX_CONTAINER_USER), Ptr, true)],
};

pub(super) static CORE_V1_LINUX_CONTAINER_USER: Msg = Msg {
    name: "k8s.io.api.core.v1.LinuxContainerUser",
    fields: &[
        f(1, "uid", I64, Value, false),
        f(2, "gid", I64, Value, false),
        f(3, "supplementalGroups", I64, Repeated, true),
    ],
};

pub(super) static CORE_V1_RESOURCE_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "resources",
            Msg(&CORE_V1_RESOURCE_HEALTH),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_RESOURCE_HEALTH: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceHealth",
    fields: &[
        f(1, "resourceID", Str, Value, false),
        f(2, "health", Str, Value, true),
    ],
};

pub(super) static CORE_V1_POD_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PodResourceClaimStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "resourceClaimName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_POD_EXTENDED_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PodExtendedResourceClaimStatus",
    fields: &[
        f(
            1,
            "requestMappings",
            Msg(&CORE_V1_CONTAINER_EXTENDED_RESOURCE_REQUEST),
            Repeated,
            false,
        ),
        f(2, "resourceClaimName", Str, Value, false),
    ],
};

pub(super) static CORE_V1_CONTAINER_EXTENDED_RESOURCE_REQUEST: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerExtendedResourceRequest",
    fields: &[
        f(1, "containerName", Str, Value, false),
        f(2, "resourceName", Str, Value, false),
        f(3, "requestName", Str, Value, false),
    ],
};

pub(super) static CORE_V1_POD_TEMPLATE: Msg = Msg {
    name: "k8s.io.api.core.v1.PodTemplate",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, true),
    ],
};

pub(super) static CORE_V1_POD_TEMPLATE_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.PodTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_POD_SPEC), Value, true),
    ],
};

pub(super) static CORE_V1_SERVICE: Msg = Msg {
    name: "k8s.io.api.core.v1.Service",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_SERVICE_SPEC), Value, true),
        f(3, "status", Msg(&CORE_V1_SERVICE_STATUS), Value, true),
    ],
};

pub(super) static CORE_V1_SERVICE_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.ServiceSpec",
    fields: &[
        f(1, "ports", Msg(&CORE_V1_SERVICE_PORT), Repeated, true),
        f(2, "selector", Str, Map, true),
        f(3, "clusterIP", Str, Value, true),
        f(4, "type", Str, Value, true),
        f(5, "externalIPs", Str, Repeated, true),
        f(7, "sessionAffinity", Str, Value, true),
        f(8, "loadBalancerIP", Str, Value, true),
        f(9, "loadBalancerSourceRanges", Str, Repeated, true),
        f(10, "externalName", Str, Value, true),
        f(11, "externalTrafficPolicy", Str, Value, true),
        f(12, "healthCheckNodePort", I32, Value, true),
        f(13, "publishNotReadyAddresses", Bool, Value, true),
        f(
            14,
            "sessionAffinityConfig",
            Msg(&CORE_V1_SESSION_AFFINITY_CONFIG),
            Ptr,
            true,
        ),
        f(17, "ipFamilyPolicy", Str, Ptr, true),
        f(18, "clusterIPs", Str, Repeated, true),
        f(19, "ipFamilies", Str, Repeated, true),
        f(20, "allocateLoadBalancerNodePorts", Bool, Ptr, true),
        f(21, "loadBalancerClass", Str, Ptr, true),
        f(22, "internalTrafficPolicy", Str, Ptr, true),
        f(23, "trafficDistribution", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_SERVICE_PORT: Msg = Msg {
    name: "k8s.io.api.core.v1.ServicePort",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "protocol", Str, Value, true),
        f(3, "port", I32, Value, false),
        f(4, "targetPort", IntOrString, Value, true),
        f(5, "nodePort", I32, Value, true),
        f(6, "appProtocol", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_SESSION_AFFINITY_CONFIG: Msg = Msg {
    name: "k8s.io.api.core.v1.SessionAffinityConfig",
    fields: &[f(1, "clientIP", Msg(&CORE_V1_CLIENT_IPCONFIG), Ptr, true)],
};

pub(super) static CORE_V1_CLIENT_IPCONFIG: Msg = Msg {
    name: "k8s.io.api.core.v1.ClientIPConfig",
    fields: &[f(1, "timeoutSeconds", I32, Ptr, true)],
};

pub(super) static CORE_V1_SERVICE_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ServiceStatus",
    fields: &[
        f(
            1,
            "loadBalancer",
            Msg(&CORE_V1_LOAD_BALANCER_STATUS),
            Value,
            true,
        ),
        f(2, "conditions", Msg(&META_V1_CONDITION), Repeated, true),
    ],
};

pub(super) static CORE_V1_LOAD_BALANCER_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.LoadBalancerStatus",
    fields: &[f(
        1,
        "ingress",
        Msg(&CORE_V1_LOAD_BALANCER_INGRESS),
        Repeated,
        true,
    )],
};

pub(super) static CORE_V1_LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "k8s.io.api.core.v1.LoadBalancerIngress",
    fields: &[
        f(1, "ip", Str, Value, true),
        f(2, "hostname", Str, Value, true),
        f(3, "ipMode", Str, Ptr, true),
        f(4, "ports", Msg(&CORE_V1_PORT_STATUS), Repeated, true),
    ],
};

pub(super) static CORE_V1_PORT_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PortStatus",
    fields: &[
        f(1, "port", I32, Value, false),
        f(2, "protocol", Str, Value, false),
        f(3, "error", Str, Ptr, true),
    ],
};

pub(super) static META_V1_CONDITION: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.Condition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "observedGeneration", I64, Value, true),
        f(4, "lastTransitionTime", Time, Value, false),
        f(5, "reason", Str, Value, false),
        f(6, "message", Str, Value, false),
    ],
};

pub(super) static CORE_V1_EVENT: Msg = Msg {
    name: "k8s.io.api.core.v1.Event",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, false),
        f(
            2,
            "involvedObject",
            Msg(&CORE_V1_OBJECT_REFERENCE),
            Value,
            false,
        ),
        f(3, "reason", Str, Value, true),
        f(4, "message", Str, Value, true),
        f(5, "source", Msg(&CORE_V1_EVENT_SOURCE), Value, true),
        f(6, "firstTimestamp", Time, Value, true),
        f(7, "lastTimestamp", Time, Value, true),
        f(8, "count", I32, Value, true),
        f(9, "type", Str, Value, true),
        f(10, "eventTime", MicroTime, Value, true),
        f(11, "series", Msg(&CORE_V1_EVENT_SERIES), Ptr, true),
        f(12, "action", Str, Value, true),
        f(13, "related", Msg(&CORE_V1_OBJECT_REFERENCE), Ptr, true),
        f(14, "reportingComponent", Str, Value, false),
        f(15, "reportingInstance", Str, Value, false),
    ],
};

pub(super) static CORE_V1_EVENT_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.EventSource",
    fields: &[
        f(1, "component", Str, Value, true),
        f(2, "host", Str, Value, true),
    ],
};

pub(super) static CORE_V1_EVENT_SERIES: Msg = Msg {
    name: "k8s.io.api.core.v1.EventSeries",
    fields: &[
        f(1, "count", I32, Value, true),
        f(2, "lastObservedTime", MicroTime, Value, true),
    ],
};

pub(super) static CORE_V1_ENDPOINTS: Msg = Msg {
    name: "k8s.io.api.core.v1.Endpoints",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "subsets", Msg(&CORE_V1_ENDPOINT_SUBSET), Repeated, true),
    ],
};

pub(super) static CORE_V1_ENDPOINT_SUBSET: Msg = Msg {
    name: "k8s.io.api.core.v1.EndpointSubset",
    fields: &[
        f(
            1,
            "addresses",
            Msg(&CORE_V1_ENDPOINT_ADDRESS),
            Repeated,
            true,
        ),
        f(
            2,
            "notReadyAddresses",
            Msg(&CORE_V1_ENDPOINT_ADDRESS),
            Repeated,
            true,
        ),
        f(3, "ports", Msg(&CORE_V1_ENDPOINT_PORT), Repeated, true),
    ],
};

pub(super) static CORE_V1_ENDPOINT_ADDRESS: Msg = Msg {
    name: "k8s.io.api.core.v1.EndpointAddress",
    fields: &[
        f(1, "ip", Str, Value, false),
        f(2, "targetRef", Msg(&CORE_V1_OBJECT_REFERENCE), Ptr, true),
        f(3, "hostname", Str, Value, true),
        f(4, "nodeName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_ENDPOINT_PORT: Msg = Msg {
    name: "k8s.io.api.core.v1.EndpointPort",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "port", I32, Value, false),
        f(3, "protocol", Str, Value, true),
        f(4, "appProtocol", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_RESOURCE_QUOTA: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceQuota",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_RESOURCE_QUOTA_SPEC), Value, true),
        f(
            3,
            "status",
            Msg(&CORE_V1_RESOURCE_QUOTA_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static CORE_V1_RESOURCE_QUOTA_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceQuotaSpec",
    fields: &[
        f(1, "hard", Quantity, Map, true),
        f(2, "scopes", Str, Repeated, true),
        f(3, "scopeSelector", Msg(&CORE_V1_SCOPE_SELECTOR), Ptr, true),
    ],
};

pub(super) static CORE_V1_SCOPE_SELECTOR: Msg = Msg {
    name: "k8s.io.api.core.v1.ScopeSelector",
    fields: &[f(
        1,
        "matchExpressions",
        Msg(&CORE_V1_SCOPED_RESOURCE_SELECTOR_REQUIREMENT),
        Repeated,
        true,
    )],
};

pub(super) static CORE_V1_SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "k8s.io.api.core.v1.ScopedResourceSelectorRequirement",
    fields: &[
        f(1, "scopeName", Str, Value, false),
        f(2, "operator", Str, Value, false),
        f(3, "values", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_RESOURCE_QUOTA_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ResourceQuotaStatus",
    fields: &[
        f(1, "hard", Quantity, Map, true),
        f(2, "used", Quantity, Map, true),
    ],
};

pub(super) static CORE_V1_LIMIT_RANGE: Msg = Msg {
    name: "k8s.io.api.core.v1.LimitRange",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_LIMIT_RANGE_SPEC), Value, true),
    ],
};

pub(super) static CORE_V1_LIMIT_RANGE_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.LimitRangeSpec",
    fields: &[f(
        1,
        "limits",
        Msg(&CORE_V1_LIMIT_RANGE_ITEM),
        Repeated,
        false,
    )],
};

pub(super) static CORE_V1_LIMIT_RANGE_ITEM: Msg = Msg {
    name: "k8s.io.api.core.v1.LimitRangeItem",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "max", Quantity, Map, true),
        f(3, "min", Quantity, Map, true),
        f(4, "default", Quantity, Map, true),
        f(5, "defaultRequest", Quantity, Map, true),
        f(6, "maxLimitRequestRatio", Quantity, Map, true),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaim",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaimStatus",
    fields: &[
        f(1, "phase", Str, Value, true),
        f(2, "accessModes", Str, Repeated, true),
        f(3, "capacity", Quantity, Map, true),
        f(
            4,
            "conditions",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM_CONDITION),
            Repeated,
            true,
        ),
        f(5, "allocatedResources", Quantity, Map, true),
        f(7, "allocatedResourceStatuses", Str, Map, true),
        f(8, "currentVolumeAttributesClassName", Str, Ptr, true),
        f(
            9,
            "modifyVolumeStatus",
            Msg(&CORE_V1_MODIFY_VOLUME_STATUS),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_CLAIM_CONDITION: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeClaimCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastProbeTime", Time, Value, true),
        f(4, "lastTransitionTime", Time, Value, true),
        f(5, "reason", Str, Value, true),
        f(6, "message", Str, Value, true),
    ],
};

pub(super) static CORE_V1_MODIFY_VOLUME_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ModifyVolumeStatus",
    fields: &[
        f(1, "targetVolumeAttributesClassName", Str, Value, true),
        f(2, "status", Str, Value, false),
    ],
};

pub(super) static CORE_V1_REPLICATION_CONTROLLER: Msg = Msg {
    name: "k8s.io.api.core.v1.ReplicationController",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&CORE_V1_REPLICATION_CONTROLLER_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&CORE_V1_REPLICATION_CONTROLLER_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static CORE_V1_REPLICATION_CONTROLLER_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.ReplicationControllerSpec",
    fields: &[
        f(1, "replicas", I32, Ptr, true),
        f(2, "selector", Str, Map, true),
        f(3, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Ptr, true),
        f(4, "minReadySeconds", I32, Value, true),
    ],
};

pub(super) static CORE_V1_REPLICATION_CONTROLLER_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.ReplicationControllerStatus",
    fields: &[
        f(1, "replicas", I32, Value, false),
        f(2, "fullyLabeledReplicas", I32, Value, true),
        f(3, "observedGeneration", I64, Value, true),
        f(4, "readyReplicas", I32, Value, true),
        f(5, "availableReplicas", I32, Value, true),
        f(
            6,
            "conditions",
            Msg(&CORE_V1_REPLICATION_CONTROLLER_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_REPLICATION_CONTROLLER_CONDITION: Msg = Msg {
    name: "k8s.io.api.core.v1.ReplicationControllerCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
    ],
};

pub(super) static CORE_V1_BINDING: Msg = Msg {
    name: "k8s.io.api.core.v1.Binding",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "target", Msg(&CORE_V1_OBJECT_REFERENCE), Value, false),
    ],
};

pub(super) static APPS_V1_DEPLOYMENT: Msg = Msg {
    name: "k8s.io.api.apps.v1.Deployment",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&APPS_V1_DEPLOYMENT_SPEC), Value, true),
        f(3, "status", Msg(&APPS_V1_DEPLOYMENT_STATUS), Value, true),
    ],
};

pub(super) static APPS_V1_DEPLOYMENT_SPEC: Msg = Msg {
    name: "k8s.io.api.apps.v1.DeploymentSpec",
    fields: &[
        f(1, "replicas", I32, Ptr, true),
        f(2, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, false),
        f(3, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, false),
        f(
            4,
            "strategy",
            Msg(&APPS_V1_DEPLOYMENT_STRATEGY),
            Value,
            true,
        ),
        f(5, "minReadySeconds", I32, Value, true),
        f(6, "revisionHistoryLimit", I32, Ptr, true),
        f(7, "paused", Bool, Value, true),
        f(9, "progressDeadlineSeconds", I32, Ptr, true),
    ],
};

pub(super) static APPS_V1_DEPLOYMENT_STRATEGY: Msg = Msg {
    name: "k8s.io.api.apps.v1.DeploymentStrategy",
    fields: &[
        f(1, "type", Str, Value, true),
        f(
            2,
            "rollingUpdate",
            Msg(&APPS_V1_ROLLING_UPDATE_DEPLOYMENT),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APPS_V1_ROLLING_UPDATE_DEPLOYMENT: Msg = Msg {
    name: "k8s.io.api.apps.v1.RollingUpdateDeployment",
    fields: &[
        f(1, "maxUnavailable", IntOrString, Ptr, true),
        f(2, "maxSurge", IntOrString, Ptr, true),
    ],
};

pub(super) static APPS_V1_DEPLOYMENT_STATUS: Msg = Msg {
    name: "k8s.io.api.apps.v1.DeploymentStatus",
    fields: &[
        f(1, "observedGeneration", I64, Value, true),
        f(2, "replicas", I32, Value, true),
        f(3, "updatedReplicas", I32, Value, true),
        f(4, "availableReplicas", I32, Value, true),
        f(5, "unavailableReplicas", I32, Value, true),
        f(
            6,
            "conditions",
            Msg(&APPS_V1_DEPLOYMENT_CONDITION),
            Repeated,
            true,
        ),
        f(7, "readyReplicas", I32, Value, true),
        f(8, "collisionCount", I32, Ptr, true),
        f(9, "terminatingReplicas", I32, Ptr, true),
    ],
};

pub(super) static APPS_V1_DEPLOYMENT_CONDITION: Msg = Msg {
    name: "k8s.io.api.apps.v1.DeploymentCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
        f(6, "lastUpdateTime", Time, Value, true),
        f(7, "lastTransitionTime", Time, Value, true),
    ],
};

pub(super) static APPS_V1_REPLICA_SET: Msg = Msg {
    name: "k8s.io.api.apps.v1.ReplicaSet",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&APPS_V1_REPLICA_SET_SPEC), Value, true),
        f(3, "status", Msg(&APPS_V1_REPLICA_SET_STATUS), Value, true),
    ],
};

pub(super) static APPS_V1_REPLICA_SET_SPEC: Msg = Msg {
    name: "k8s.io.api.apps.v1.ReplicaSetSpec",
    fields: &[
        f(1, "replicas", I32, Ptr, true),
        f(2, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, false),
        f(3, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, true),
        f(4, "minReadySeconds", I32, Value, true),
    ],
};

pub(super) static APPS_V1_REPLICA_SET_STATUS: Msg = Msg {
    name: "k8s.io.api.apps.v1.ReplicaSetStatus",
    fields: &[
        f(1, "replicas", I32, Value, false),
        f(2, "fullyLabeledReplicas", I32, Value, true),
        f(3, "observedGeneration", I64, Value, true),
        f(4, "readyReplicas", I32, Value, true),
        f(5, "availableReplicas", I32, Value, true),
        f(
            6,
            "conditions",
            Msg(&APPS_V1_REPLICA_SET_CONDITION),
            Repeated,
            true,
        ),
        f(7, "terminatingReplicas", I32, Ptr, true),
    ],
};

pub(super) static APPS_V1_REPLICA_SET_CONDITION: Msg = Msg {
    name: "k8s.io.api.apps.v1.ReplicaSetCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSet",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&APPS_V1_STATEFUL_SET_SPEC), Value, true),
        f(3, "status", Msg(&APPS_V1_STATEFUL_SET_STATUS), Value, true),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET_SPEC: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetSpec",
    fields: &[
        f(1, "replicas", I32, Ptr, true),
        f(2, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, false),
        f(3, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, false),
        f(
            4,
            "volumeClaimTemplates",
            Msg(&CORE_V1_PERSISTENT_VOLUME_CLAIM),
            Repeated,
            true,
        ),
        f(5, "serviceName", Str, Value, false),
        f(6, "podManagementPolicy", Str, Value, true),
        f(
            7,
            "updateStrategy",
            Msg(&APPS_V1_STATEFUL_SET_UPDATE_STRATEGY),
            Value,
            true,
        ),
        f(8, "revisionHistoryLimit", I32, Ptr, true),
        f(9, "minReadySeconds", I32, Value, true),
        f(
            10,
            "persistentVolumeClaimRetentionPolicy",
            Msg(&APPS_V1_STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY),
            Ptr,
            true,
        ),
        f(
            11,
            "ordinals",
            Msg(&APPS_V1_STATEFUL_SET_ORDINALS),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET_UPDATE_STRATEGY: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetUpdateStrategy",
    fields: &[
        f(1, "type", Str, Value, true),
        f(
            2,
            "rollingUpdate",
            Msg(&APPS_V1_ROLLING_UPDATE_STATEFUL_SET_STRATEGY),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APPS_V1_ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Msg = Msg {
    name: "k8s.io.api.apps.v1.RollingUpdateStatefulSetStrategy",
    fields: &[
        f(1, "partition", I32, Ptr, true),
        f(2, "maxUnavailable", IntOrString, Ptr, true),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy",
    fields: &[
        f(1, "whenDeleted", Str, Value, true),
        f(2, "whenScaled", Str, Value, true),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET_ORDINALS: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetOrdinals",
    fields: &[f(1, "start", I32, Value, false)],
};

pub(super) static APPS_V1_STATEFUL_SET_STATUS: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetStatus",
    fields: &[
        f(1, "observedGeneration", I64, Value, true),
        f(2, "replicas", I32, Value, false),
        f(3, "readyReplicas", I32, Value, true),
        f(4, "currentReplicas", I32, Value, true),
        f(5, "updatedReplicas", I32, Value, true),
        f(6, "currentRevision", Str, Value, true),
        f(7, "updateRevision", Str, Value, true),
        f(9, "collisionCount", I32, Ptr, true),
        f(
            10,
            "conditions",
            Msg(&APPS_V1_STATEFUL_SET_CONDITION),
            Repeated,
            true,
        ),
        f(11, "availableReplicas", I32, Value, false),
    ],
};

pub(super) static APPS_V1_STATEFUL_SET_CONDITION: Msg = Msg {
    name: "k8s.io.api.apps.v1.StatefulSetCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
    ],
};

pub(super) static APPS_V1_DAEMON_SET: Msg = Msg {
    name: "k8s.io.api.apps.v1.DaemonSet",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&APPS_V1_DAEMON_SET_SPEC), Value, true),
        f(3, "status", Msg(&APPS_V1_DAEMON_SET_STATUS), Value, true),
    ],
};

pub(super) static APPS_V1_DAEMON_SET_SPEC: Msg = Msg {
    name: "k8s.io.api.apps.v1.DaemonSetSpec",
    fields: &[
        f(1, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, false),
        f(2, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, false),
        f(
            3,
            "updateStrategy",
            Msg(&APPS_V1_DAEMON_SET_UPDATE_STRATEGY),
            Value,
            true,
        ),
        f(4, "minReadySeconds", I32, Value, true),
        f(6, "revisionHistoryLimit", I32, Ptr, true),
    ],
};

pub(super) static APPS_V1_DAEMON_SET_UPDATE_STRATEGY: Msg = Msg {
    name: "k8s.io.api.apps.v1.DaemonSetUpdateStrategy",
    fields: &[
        f(1, "type", Str, Value, true),
        f(
            2,
            "rollingUpdate",
            Msg(&APPS_V1_ROLLING_UPDATE_DAEMON_SET),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APPS_V1_ROLLING_UPDATE_DAEMON_SET: Msg = Msg {
    name: "k8s.io.api.apps.v1.RollingUpdateDaemonSet",
    fields: &[
        f(1, "maxUnavailable", IntOrString, Ptr, true),
        f(2, "maxSurge", IntOrString, Ptr, true),
    ],
};

pub(super) static APPS_V1_DAEMON_SET_STATUS: Msg = Msg {
    name: "k8s.io.api.apps.v1.DaemonSetStatus",
    fields: &[
        f(1, "currentNumberScheduled", I32, Value, false),
        f(2, "numberMisscheduled", I32, Value, false),
        f(3, "desiredNumberScheduled", I32, Value, false),
        f(4, "numberReady", I32, Value, false),
        f(5, "observedGeneration", I64, Value, true),
        f(6, "updatedNumberScheduled", I32, Value, true),
        f(7, "numberAvailable", I32, Value, true),
        f(8, "numberUnavailable", I32, Value, true),
        f(9, "collisionCount", I32, Ptr, true),
        f(
            10,
            "conditions",
            Msg(&APPS_V1_DAEMON_SET_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static APPS_V1_DAEMON_SET_CONDITION: Msg = Msg {
    name: "k8s.io.api.apps.v1.DaemonSetCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
    ],
};

pub(super) static APPS_V1_CONTROLLER_REVISION: Msg = Msg {
    name: "k8s.io.api.apps.v1.ControllerRevision",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "data", RawJson, Value, true),
        f(3, "revision", I64, Value, false),
    ],
};

pub(super) static BATCH_V1_JOB: Msg = Msg {
    name: "k8s.io.api.batch.v1.Job",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&BATCH_V1_JOB_SPEC), Value, true),
        f(3, "status", Msg(&BATCH_V1_JOB_STATUS), Value, true),
    ],
};

pub(super) static BATCH_V1_JOB_SPEC: Msg = Msg {
    name: "k8s.io.api.batch.v1.JobSpec",
    fields: &[
        f(1, "parallelism", I32, Ptr, true),
        f(2, "completions", I32, Ptr, true),
        f(3, "activeDeadlineSeconds", I64, Ptr, true),
        f(4, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(5, "manualSelector", Bool, Ptr, true),
        f(6, "template", Msg(&CORE_V1_POD_TEMPLATE_SPEC), Value, false),
        f(7, "backoffLimit", I32, Ptr, true),
        f(8, "ttlSecondsAfterFinished", I32, Ptr, true),
        f(9, "completionMode", Str, Ptr, true),
        f(10, "suspend", Bool, Ptr, true),
        f(
            11,
            "podFailurePolicy",
            Msg(&BATCH_V1_POD_FAILURE_POLICY),
            Ptr,
            true,
        ),
        f(12, "backoffLimitPerIndex", I32, Ptr, true),
        f(13, "maxFailedIndexes", I32, Ptr, true),
        f(14, "podReplacementPolicy", Str, Ptr, true),
        f(15, "managedBy", Str, Ptr, true),
        f(
            16,
            "successPolicy",
            Msg(&BATCH_V1_SUCCESS_POLICY),
            Ptr,
            true,
        ),
    ],
};

pub(super) static BATCH_V1_POD_FAILURE_POLICY: Msg = Msg {
    name: "k8s.io.api.batch.v1.PodFailurePolicy",
    fields: &[f(
        1,
        "rules",
        Msg(&BATCH_V1_POD_FAILURE_POLICY_RULE),
        Repeated,
        false,
    )],
};

pub(super) static BATCH_V1_POD_FAILURE_POLICY_RULE: Msg = Msg {
    name: "k8s.io.api.batch.v1.PodFailurePolicyRule",
    fields: &[
        f(1, "action", Str, Value, false),
        f(
            2,
            "onExitCodes",
            Msg(&BATCH_V1_POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT),
            Ptr,
            true,
        ),
        f(
            3,
            "onPodConditions",
            Msg(&BATCH_V1_POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN),
            Repeated,
            true,
        ),
    ],
};

pub(super) static BATCH_V1_POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Msg = Msg {
    name: "k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
    fields: &[
        f(1, "containerName", Str, Ptr, true),
        f(2, "operator", Str, Value, false),
        f(3, "values", I32, Repeated, false),
    ],
};

pub(super) static BATCH_V1_POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Msg = Msg {
    name: "k8s.io.api.batch.v1.PodFailurePolicyOnPodConditionsPattern",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
    ],
};

pub(super) static BATCH_V1_SUCCESS_POLICY: Msg = Msg {
    name: "k8s.io.api.batch.v1.SuccessPolicy",
    fields: &[f(
        1,
        "rules",
        Msg(&BATCH_V1_SUCCESS_POLICY_RULE),
        Repeated,
        false,
    )],
};

pub(super) static BATCH_V1_SUCCESS_POLICY_RULE: Msg = Msg {
    name: "k8s.io.api.batch.v1.SuccessPolicyRule",
    fields: &[
        f(1, "succeededIndexes", Str, Ptr, true),
        f(2, "succeededCount", I32, Ptr, true),
    ],
};

pub(super) static BATCH_V1_JOB_STATUS: Msg = Msg {
    name: "k8s.io.api.batch.v1.JobStatus",
    fields: &[
        f(
            1,
            "conditions",
            Msg(&BATCH_V1_JOB_CONDITION),
            Repeated,
            true,
        ),
        f(2, "startTime", Time, Ptr, true),
        f(3, "completionTime", Time, Ptr, true),
        f(4, "active", I32, Value, true),
        f(5, "succeeded", I32, Value, true),
        f(6, "failed", I32, Value, true),
        f(7, "completedIndexes", Str, Value, true),
        f(
            8,
            "uncountedTerminatedPods",
            Msg(&BATCH_V1_UNCOUNTED_TERMINATED_PODS),
            Ptr,
            true,
        ),
        f(9, "ready", I32, Ptr, true),
        f(10, "failedIndexes", Str, Ptr, true),
        f(11, "terminating", I32, Ptr, true),
    ],
};

pub(super) static BATCH_V1_JOB_CONDITION: Msg = Msg {
    name: "k8s.io.api.batch.v1.JobCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastProbeTime", Time, Value, true),
        f(4, "lastTransitionTime", Time, Value, true),
        f(5, "reason", Str, Value, true),
        f(6, "message", Str, Value, true),
    ],
};

pub(super) static BATCH_V1_UNCOUNTED_TERMINATED_PODS: Msg = Msg {
    name: "k8s.io.api.batch.v1.UncountedTerminatedPods",
    fields: &[
        f(1, "succeeded", Str, Repeated, true),
        f(2, "failed", Str, Repeated, true),
    ],
};

pub(super) static BATCH_V1_CRON_JOB: Msg = Msg {
    name: "k8s.io.api.batch.v1.CronJob",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&BATCH_V1_CRON_JOB_SPEC), Value, true),
        f(3, "status", Msg(&BATCH_V1_CRON_JOB_STATUS), Value, true),
    ],
};

pub(super) static BATCH_V1_CRON_JOB_SPEC: Msg = Msg {
    name: "k8s.io.api.batch.v1.CronJobSpec",
    fields: &[
        f(1, "schedule", Str, Value, false),
        f(2, "startingDeadlineSeconds", I64, Ptr, true),
        f(3, "concurrencyPolicy", Str, Value, true),
        f(4, "suspend", Bool, Ptr, true),
        f(
            5,
            "jobTemplate",
            Msg(&BATCH_V1_JOB_TEMPLATE_SPEC),
            Value,
            false,
        ),
        f(6, "successfulJobsHistoryLimit", I32, Ptr, true),
        f(7, "failedJobsHistoryLimit", I32, Ptr, true),
        f(8, "timeZone", Str, Ptr, true),
    ],
};

pub(super) static BATCH_V1_JOB_TEMPLATE_SPEC: Msg = Msg {
    name: "k8s.io.api.batch.v1.JobTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&BATCH_V1_JOB_SPEC), Value, true),
    ],
};

pub(super) static BATCH_V1_CRON_JOB_STATUS: Msg = Msg {
    name: "k8s.io.api.batch.v1.CronJobStatus",
    fields: &[
        f(1, "active", Msg(&CORE_V1_OBJECT_REFERENCE), Repeated, true),
        f(4, "lastScheduleTime", Time, Ptr, true),
        f(5, "lastSuccessfulTime", Time, Ptr, true),
    ],
};

pub(super) static POLICY_V1_EVICTION: Msg = Msg {
    name: "k8s.io.api.policy.v1.Eviction",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "deleteOptions", Msg(&META_V1_DELETE_OPTIONS), Ptr, true),
    ],
};

pub(super) static META_V1_DELETE_OPTIONS: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    fields: &[
        f(1, "gracePeriodSeconds", I64, Ptr, true),
        f(2, "preconditions", Msg(&META_V1_PRECONDITIONS), Ptr, true),
        f(3, "orphanDependents", Bool, Ptr, true),
        f(4, "propagationPolicy", Str, Ptr, true),
        f(5, "dryRun", Str, Repeated, true),
        f(
            6,
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            Bool,
            Ptr,
            true,
        ),
    ],
};

pub(super) static META_V1_PRECONDITIONS: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.Preconditions",
    fields: &[
        f(1, "uid", Str, Ptr, true),
        f(2, "resourceVersion", Str, Ptr, true),
    ],
};

pub(super) static POLICY_V1_POD_DISRUPTION_BUDGET: Msg = Msg {
    name: "k8s.io.api.policy.v1.PodDisruptionBudget",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&POLICY_V1_POD_DISRUPTION_BUDGET_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&POLICY_V1_POD_DISRUPTION_BUDGET_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static POLICY_V1_POD_DISRUPTION_BUDGET_SPEC: Msg = Msg {
    name: "k8s.io.api.policy.v1.PodDisruptionBudgetSpec",
    fields: &[
        f(1, "minAvailable", IntOrString, Ptr, true),
        f(2, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(3, "maxUnavailable", IntOrString, Ptr, true),
        f(4, "unhealthyPodEvictionPolicy", Str, Ptr, true),
    ],
};

pub(super) static POLICY_V1_POD_DISRUPTION_BUDGET_STATUS: Msg = Msg {
    name: "k8s.io.api.policy.v1.PodDisruptionBudgetStatus",
    fields: &[
        f(1, "observedGeneration", I64, Value, true),
        f(2, "disruptedPods", Time, Map, true),
        f(3, "disruptionsAllowed", I32, Value, false),
        f(4, "currentHealthy", I32, Value, false),
        f(5, "desiredHealthy", I32, Value, false),
        f(6, "expectedPods", I32, Value, false),
        f(7, "conditions", Msg(&META_V1_CONDITION), Repeated, true),
    ],
};

pub(super) static COORDINATION_V1_LEASE: Msg = Msg {
    name: "k8s.io.api.coordination.v1.Lease",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&COORDINATION_V1_LEASE_SPEC), Value, true),
    ],
};

pub(super) static COORDINATION_V1_LEASE_SPEC: Msg = Msg {
    name: "k8s.io.api.coordination.v1.LeaseSpec",
    fields: &[
        f(1, "holderIdentity", Str, Ptr, true),
        f(2, "leaseDurationSeconds", I32, Ptr, true),
        f(3, "acquireTime", MicroTime, Ptr, true),
        f(4, "renewTime", MicroTime, Ptr, true),
        f(5, "leaseTransitions", I32, Ptr, true),
        f(6, "strategy", Str, Ptr, true),
        f(7, "preferredHolder", Str, Ptr, true),
    ],
};

pub(super) static RBAC_V1_ROLE: Msg = Msg {
    name: "k8s.io.api.rbac.v1.Role",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "rules", Msg(&RBAC_V1_POLICY_RULE), Repeated, false),
    ],
};

pub(super) static RBAC_V1_POLICY_RULE: Msg = Msg {
    name: "k8s.io.api.rbac.v1.PolicyRule",
    fields: &[
        f(1, "verbs", Str, Repeated, false),
        f(2, "apiGroups", Str, Repeated, true),
        f(3, "resources", Str, Repeated, true),
        f(4, "resourceNames", Str, Repeated, true),
        f(5, "nonResourceURLs", Str, Repeated, true),
    ],
};

pub(super) static RBAC_V1_ROLE_BINDING: Msg = Msg {
    name: "k8s.io.api.rbac.v1.RoleBinding",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "subjects", Msg(&RBAC_V1_SUBJECT), Repeated, true),
        f(3, "roleRef", Msg(&RBAC_V1_ROLE_REF), Value, false),
    ],
};

pub(super) static RBAC_V1_SUBJECT: Msg = Msg {
    name: "k8s.io.api.rbac.v1.Subject",
    fields: &[
        f(1, "kind", Str, Value, false),
        f(2, "apiGroup", Str, Value, true),
        f(3, "name", Str, Value, false),
        f(4, "namespace", Str, Value, true),
    ],
};

pub(super) static RBAC_V1_ROLE_REF: Msg = Msg {
    name: "k8s.io.api.rbac.v1.RoleRef",
    fields: &[
        f(1, "apiGroup", Str, Value, false),
        f(2, "kind", Str, Value, false),
        f(3, "name", Str, Value, false),
    ],
};

pub(super) static RBAC_V1_CLUSTER_ROLE: Msg = Msg {
    name: "k8s.io.api.rbac.v1.ClusterRole",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "rules", Msg(&RBAC_V1_POLICY_RULE), Repeated, false),
        f(
            3,
            "aggregationRule",
            Msg(&RBAC_V1_AGGREGATION_RULE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static RBAC_V1_AGGREGATION_RULE: Msg = Msg {
    name: "k8s.io.api.rbac.v1.AggregationRule",
    fields: &[f(
        1,
        "clusterRoleSelectors",
        Msg(&META_V1_LABEL_SELECTOR),
        Repeated,
        true,
    )],
};

pub(super) static RBAC_V1_CLUSTER_ROLE_BINDING: Msg = Msg {
    name: "k8s.io.api.rbac.v1.ClusterRoleBinding",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "subjects", Msg(&RBAC_V1_SUBJECT), Repeated, true),
        f(3, "roleRef", Msg(&RBAC_V1_ROLE_REF), Value, false),
    ],
};

pub(super) static NETWORKING_V1_INGRESS: Msg = Msg {
    name: "k8s.io.api.networking.v1.Ingress",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&NETWORKING_V1_INGRESS_SPEC), Value, true),
        f(3, "status", Msg(&NETWORKING_V1_INGRESS_STATUS), Value, true),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_SPEC: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressSpec",
    fields: &[
        f(
            1,
            "defaultBackend",
            Msg(&NETWORKING_V1_INGRESS_BACKEND),
            Ptr,
            true,
        ),
        f(2, "tls", Msg(&NETWORKING_V1_INGRESS_TLS), Repeated, true),
        f(3, "rules", Msg(&NETWORKING_V1_INGRESS_RULE), Repeated, true),
        f(4, "ingressClassName", Str, Ptr, true),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_BACKEND: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressBackend",
    fields: &[
        f(
            3,
            "resource",
            Msg(&CORE_V1_TYPED_LOCAL_OBJECT_REFERENCE),
            Ptr,
            true,
        ),
        f(
            4,
            "service",
            Msg(&NETWORKING_V1_INGRESS_SERVICE_BACKEND),
            Ptr,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_SERVICE_BACKEND: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressServiceBackend",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "port",
            Msg(&NETWORKING_V1_SERVICE_BACKEND_PORT),
            Value,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_SERVICE_BACKEND_PORT: Msg = Msg {
    name: "k8s.io.api.networking.v1.ServiceBackendPort",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "number", I32, Value, true),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_TLS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressTLS",
    fields: &[
        f(1, "hosts", Str, Repeated, true),
        f(2, "secretName", Str, Value, true),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_RULE: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressRule",
    fields: &[
        f(1, "host", Str, Value, true),
        f(2, "", Msg(&NETWORKING_V1_INGRESS_RULE_VALUE), Inline, false),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_RULE_VALUE: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressRuleValue",
    fields: &[f(
        1,
        "http",
        Msg(&NETWORKING_V1_HTTPINGRESS_RULE_VALUE),
        Ptr,
        true,
    )],
};

pub(super) static NETWORKING_V1_HTTPINGRESS_RULE_VALUE: Msg = Msg {
    name: "k8s.io.api.networking.v1.HTTPIngressRuleValue",
    fields: &[f(
        1,
        "paths",
        Msg(&NETWORKING_V1_HTTPINGRESS_PATH),
        Repeated,
        false,
    )],
};

pub(super) static NETWORKING_V1_HTTPINGRESS_PATH: Msg = Msg {
    name: "k8s.io.api.networking.v1.HTTPIngressPath",
    fields: &[
        f(1, "path", Str, Value, true),
        f(
            2,
            "backend",
            Msg(&NETWORKING_V1_INGRESS_BACKEND),
            Value,
            false,
        ),
        f(3, "pathType", Str, Ptr, false),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_STATUS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressStatus",
    fields: &[f(
        1,
        "loadBalancer",
        Msg(&NETWORKING_V1_INGRESS_LOAD_BALANCER_STATUS),
        Value,
        true,
    )],
};

pub(super) static NETWORKING_V1_INGRESS_LOAD_BALANCER_STATUS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressLoadBalancerStatus",
    fields: &[f(
        1,
        "ingress",
        Msg(&NETWORKING_V1_INGRESS_LOAD_BALANCER_INGRESS),
        Repeated,
        true,
    )],
};

pub(super) static NETWORKING_V1_INGRESS_LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressLoadBalancerIngress",
    fields: &[
        f(1, "ip", Str, Value, true),
        f(2, "hostname", Str, Value, true),
        f(
            4,
            "ports",
            Msg(&NETWORKING_V1_INGRESS_PORT_STATUS),
            Repeated,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_PORT_STATUS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressPortStatus",
    fields: &[
        f(1, "port", I32, Value, false),
        f(2, "protocol", Str, Value, false),
        f(3, "error", Str, Ptr, true),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_CLASS: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressClass",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&NETWORKING_V1_INGRESS_CLASS_SPEC),
            Value,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_CLASS_SPEC: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressClassSpec",
    fields: &[
        f(1, "controller", Str, Value, true),
        f(
            2,
            "parameters",
            Msg(&NETWORKING_V1_INGRESS_CLASS_PARAMETERS_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_INGRESS_CLASS_PARAMETERS_REFERENCE: Msg = Msg {
    name: "k8s.io.api.networking.v1.IngressClassParametersReference",
    fields: &[
        f(1, "apiGroup", Str, Ptr, true),
        f(2, "kind", Str, Value, false),
        f(3, "name", Str, Value, false),
        f(4, "scope", Str, Ptr, false),
        f(5, "namespace", Str, Ptr, true),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicy",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&NETWORKING_V1_NETWORK_POLICY_SPEC),
            Value,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY_SPEC: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicySpec",
    fields: &[
        f(1, "podSelector", Msg(&META_V1_LABEL_SELECTOR), Value, false),
        f(
            2,
            "ingress",
            Msg(&NETWORKING_V1_NETWORK_POLICY_INGRESS_RULE),
            Repeated,
            true,
        ),
        f(
            3,
            "egress",
            Msg(&NETWORKING_V1_NETWORK_POLICY_EGRESS_RULE),
            Repeated,
            true,
        ),
        f(4, "policyTypes", Str, Repeated, true),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY_INGRESS_RULE: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicyIngressRule",
    fields: &[
        f(
            1,
            "ports",
            Msg(&NETWORKING_V1_NETWORK_POLICY_PORT),
            Repeated,
            true,
        ),
        f(
            2,
            "from",
            Msg(&NETWORKING_V1_NETWORK_POLICY_PEER),
            Repeated,
            true,
        ),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY_PORT: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicyPort",
    fields: &[
        f(1, "protocol", Str, Ptr, true),
        f(2, "port", IntOrString, Ptr, true),
        f(3, "endPort", I32, Ptr, true),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY_PEER: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicyPeer",
    fields: &[
        f(1, "podSelector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(
            2,
            "namespaceSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(3, "ipBlock", Msg(&NETWORKING_V1_IPBLOCK), Ptr, true),
    ],
};

pub(super) static NETWORKING_V1_IPBLOCK: Msg = Msg {
    name: "k8s.io.api.networking.v1.IPBlock",
    fields: &[
        f(1, "cidr", Str, Value, false),
        f(2, "except", Str, Repeated, true),
    ],
};

pub(super) static NETWORKING_V1_NETWORK_POLICY_EGRESS_RULE: Msg = Msg {
    name: "k8s.io.api.networking.v1.NetworkPolicyEgressRule",
    fields: &[
        f(
            1,
            "ports",
            Msg(&NETWORKING_V1_NETWORK_POLICY_PORT),
            Repeated,
            true,
        ),
        f(
            2,
            "to",
            Msg(&NETWORKING_V1_NETWORK_POLICY_PEER),
            Repeated,
            true,
        ),
    ],
};

pub(super) static SCHEDULING_V1_PRIORITY_CLASS: Msg = Msg {
    name: "k8s.io.api.scheduling.v1.PriorityClass",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "value", I32, Value, false),
        f(3, "globalDefault", Bool, Value, true),
        f(4, "description", Str, Value, true),
        f(5, "preemptionPolicy", Str, Ptr, true),
    ],
};

pub(super) static NODE_V1_RUNTIME_CLASS: Msg = Msg {
    name: "k8s.io.api.node.v1.RuntimeClass",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "handler", Str, Value, false),
        f(3, "overhead", Msg(&NODE_V1_OVERHEAD), Ptr, true),
        f(4, "scheduling", Msg(&NODE_V1_SCHEDULING), Ptr, true),
    ],
};

pub(super) static NODE_V1_OVERHEAD: Msg = Msg {
    name: "k8s.io.api.node.v1.Overhead",
    fields: &[f(1, "podFixed", Quantity, Map, true)],
};

pub(super) static NODE_V1_SCHEDULING: Msg = Msg {
    name: "k8s.io.api.node.v1.Scheduling",
    fields: &[
        f(1, "nodeSelector", Str, Map, true),
        f(2, "tolerations", Msg(&CORE_V1_TOLERATION), Repeated, true),
    ],
};

pub(super) static DISCOVERY_V1_ENDPOINT_SLICE: Msg = Msg {
    name: "k8s.io.api.discovery.v1.EndpointSlice",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "endpoints", Msg(&DISCOVERY_V1_ENDPOINT), Repeated, false),
        f(
            3,
            "ports",
            Msg(&DISCOVERY_V1_ENDPOINT_PORT),
            Repeated,
            false,
        ),
        f(4, "addressType", Str, Value, false),
    ],
};

pub(super) static DISCOVERY_V1_ENDPOINT: Msg = Msg {
    name: "k8s.io.api.discovery.v1.Endpoint",
    fields: &[
        f(1, "addresses", Str, Repeated, false),
        f(
            2,
            "conditions",
            Msg(&DISCOVERY_V1_ENDPOINT_CONDITIONS),
            Value,
            true,
        ),
        f(3, "hostname", Str, Ptr, true),
        f(4, "targetRef", Msg(&CORE_V1_OBJECT_REFERENCE), Ptr, true),
        f(5, "deprecatedTopology", Str, Map, true),
        f(6, "nodeName", Str, Ptr, true),
        f(7, "zone", Str, Ptr, true),
        f(8, "hints", Msg(&DISCOVERY_V1_ENDPOINT_HINTS), Ptr, true),
    ],
};

pub(super) static DISCOVERY_V1_ENDPOINT_CONDITIONS: Msg = Msg {
    name: "k8s.io.api.discovery.v1.EndpointConditions",
    fields: &[
        f(1, "ready", Bool, Ptr, true),
        f(2, "serving", Bool, Ptr, true),
        f(3, "terminating", Bool, Ptr, true),
    ],
};

pub(super) static DISCOVERY_V1_ENDPOINT_HINTS: Msg = Msg {
    name: "k8s.io.api.discovery.v1.EndpointHints",
    fields: &[
        f(1, "forZones", Msg(&DISCOVERY_V1_FOR_ZONE), Repeated, true),
        f(2, "forNodes", Msg(&DISCOVERY_V1_FOR_NODE), Repeated, true),
    ],
};

pub(super) static DISCOVERY_V1_FOR_ZONE: Msg = Msg {
    name: "k8s.io.api.discovery.v1.ForZone",
    fields: &[f(1, "name", Str, Value, false)],
};

pub(super) static DISCOVERY_V1_FOR_NODE: Msg = Msg {
    name: "k8s.io.api.discovery.v1.ForNode",
    fields: &[f(1, "name", Str, Value, false)],
};

pub(super) static DISCOVERY_V1_ENDPOINT_PORT: Msg = Msg {
    name: "k8s.io.api.discovery.v1.EndpointPort",
    fields: &[
        f(1, "name", Str, Ptr, true),
        f(2, "protocol", Str, Ptr, true),
        f(3, "port", I32, Ptr, true),
        f(4, "appProtocol", Str, Ptr, true),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REQUEST: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenRequest",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTHENTICATION_V1_TOKEN_REQUEST_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&AUTHENTICATION_V1_TOKEN_REQUEST_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REQUEST_SPEC: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenRequestSpec",
    fields: &[
        f(1, "audiences", Str, Repeated, false),
        f(
            3,
            "boundObjectRef",
            Msg(&AUTHENTICATION_V1_BOUND_OBJECT_REFERENCE),
            Ptr,
            false,
        ),
        f(4, "expirationSeconds", I64, Ptr, false),
    ],
};

pub(super) static AUTHENTICATION_V1_BOUND_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.authentication.v1.BoundObjectReference",
    fields: &[
        f(1, "kind", Str, Value, true),
        f(2, "apiVersion", Str, Value, true),
        f(3, "name", Str, Value, true),
        f(4, "uid", Str, Value, true),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REQUEST_STATUS: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenRequestStatus",
    fields: &[
        f(1, "token", Str, Value, false),
        f(2, "expirationTimestamp", Time, Value, false),
    ],
};

pub(super) static AUTOSCALING_V1_SCALE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.Scale",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&AUTOSCALING_V1_SCALE_SPEC), Value, true),
        f(3, "status", Msg(&AUTOSCALING_V1_SCALE_STATUS), Value, true),
    ],
};

pub(super) static AUTOSCALING_V1_SCALE_SPEC: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.ScaleSpec",
    fields: &[f(1, "replicas", I32, Value, true)],
};

pub(super) static AUTOSCALING_V1_SCALE_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.ScaleStatus",
    fields: &[
        f(1, "replicas", I32, Value, false),
        f(2, "selector", Str, Value, true),
    ],
};

pub(super) static AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER_SPEC: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.HorizontalPodAutoscalerSpec",
    fields: &[
        f(
            1,
            "scaleTargetRef",
            Msg(&AUTOSCALING_V1_CROSS_VERSION_OBJECT_REFERENCE),
            Value,
            false,
        ),
        f(2, "minReplicas", I32, Ptr, true),
        f(3, "maxReplicas", I32, Value, false),
        f(4, "targetCPUUtilizationPercentage", I32, Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V1_CROSS_VERSION_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.CrossVersionObjectReference",
    fields: &[
        f(1, "kind", Str, Value, false),
        f(2, "name", Str, Value, false),
        f(3, "apiVersion", Str, Value, true),
    ],
};

pub(super) static AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v1.HorizontalPodAutoscalerStatus",
    fields: &[
        f(1, "observedGeneration", I64, Ptr, true),
        f(2, "lastScaleTime", Time, Ptr, true),
        f(3, "currentReplicas", I32, Value, false),
        f(4, "desiredReplicas", I32, Value, false),
        f(5, "currentCPUUtilizationPercentage", I32, Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_SPEC: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
    fields: &[
        f(
            1,
            "scaleTargetRef",
            Msg(&AUTOSCALING_V2_CROSS_VERSION_OBJECT_REFERENCE),
            Value,
            false,
        ),
        f(2, "minReplicas", I32, Ptr, true),
        f(3, "maxReplicas", I32, Value, false),
        f(
            4,
            "metrics",
            Msg(&AUTOSCALING_V2_METRIC_SPEC),
            Repeated,
            true,
        ),
        f(
            5,
            "behavior",
            Msg(&AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_BEHAVIOR),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_CROSS_VERSION_OBJECT_REFERENCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.CrossVersionObjectReference",
    fields: &[
        f(1, "kind", Str, Value, false),
        f(2, "name", Str, Value, false),
        f(3, "apiVersion", Str, Value, true),
    ],
};

pub(super) static AUTOSCALING_V2_METRIC_SPEC: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.MetricSpec",
    fields: &[
        f(1, "type", Str, Value, false),
        f(
            2,
            "object",
            Msg(&AUTOSCALING_V2_OBJECT_METRIC_SOURCE),
            Ptr,
            true,
        ),
        f(
            3,
            "pods",
            Msg(&AUTOSCALING_V2_PODS_METRIC_SOURCE),
            Ptr,
            true,
        ),
        f(
            4,
            "resource",
            Msg(&AUTOSCALING_V2_RESOURCE_METRIC_SOURCE),
            Ptr,
            true,
        ),
        f(
            5,
            "external",
            Msg(&AUTOSCALING_V2_EXTERNAL_METRIC_SOURCE),
            Ptr,
            true,
        ),
        f(
            7,
            "containerResource",
            Msg(&AUTOSCALING_V2_CONTAINER_RESOURCE_METRIC_SOURCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_OBJECT_METRIC_SOURCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ObjectMetricSource",
    fields: &[
        f(
            1,
            "describedObject",
            Msg(&AUTOSCALING_V2_CROSS_VERSION_OBJECT_REFERENCE),
            Value,
            false,
        ),
        f(
            2,
            "target",
            Msg(&AUTOSCALING_V2_METRIC_TARGET),
            Value,
            false,
        ),
        f(
            3,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_METRIC_TARGET: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.MetricTarget",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "value", Quantity, Ptr, true),
        f(3, "averageValue", Quantity, Ptr, true),
        f(4, "averageUtilization", I32, Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V2_METRIC_IDENTIFIER: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.MetricIdentifier",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V2_PODS_METRIC_SOURCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.PodsMetricSource",
    fields: &[
        f(
            1,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
        f(
            2,
            "target",
            Msg(&AUTOSCALING_V2_METRIC_TARGET),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_RESOURCE_METRIC_SOURCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ResourceMetricSource",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "target",
            Msg(&AUTOSCALING_V2_METRIC_TARGET),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_CONTAINER_RESOURCE_METRIC_SOURCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ContainerResourceMetricSource",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "target",
            Msg(&AUTOSCALING_V2_METRIC_TARGET),
            Value,
            false,
        ),
        f(3, "container", Str, Value, false),
    ],
};

pub(super) static AUTOSCALING_V2_EXTERNAL_METRIC_SOURCE: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ExternalMetricSource",
    fields: &[
        f(
            1,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
        f(
            2,
            "target",
            Msg(&AUTOSCALING_V2_METRIC_TARGET),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_BEHAVIOR: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerBehavior",
    fields: &[
        f(
            1,
            "scaleUp",
            Msg(&AUTOSCALING_V2_HPASCALING_RULES),
            Ptr,
            true,
        ),
        f(
            2,
            "scaleDown",
            Msg(&AUTOSCALING_V2_HPASCALING_RULES),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_HPASCALING_RULES: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HPAScalingRules",
    fields: &[
        f(1, "selectPolicy", Str, Ptr, true),
        f(
            2,
            "policies",
            Msg(&AUTOSCALING_V2_HPASCALING_POLICY),
            Repeated,
            true,
        ),
        f(3, "stabilizationWindowSeconds", I32, Ptr, true),
        f(4, "tolerance", Quantity, Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V2_HPASCALING_POLICY: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HPAScalingPolicy",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "value", I32, Value, false),
        f(3, "periodSeconds", I32, Value, false),
    ],
};

pub(super) static AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
    fields: &[
        f(1, "observedGeneration", I64, Ptr, true),
        f(2, "lastScaleTime", Time, Ptr, true),
        f(3, "currentReplicas", I32, Value, true),
        f(4, "desiredReplicas", I32, Value, false),
        f(
            5,
            "currentMetrics",
            Msg(&AUTOSCALING_V2_METRIC_STATUS),
            Repeated,
            false,
        ),
        f(
            6,
            "conditions",
            Msg(&AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.MetricStatus",
    fields: &[
        f(1, "type", Str, Value, false),
        f(
            2,
            "object",
            Msg(&AUTOSCALING_V2_OBJECT_METRIC_STATUS),
            Ptr,
            true,
        ),
        f(
            3,
            "pods",
            Msg(&AUTOSCALING_V2_PODS_METRIC_STATUS),
            Ptr,
            true,
        ),
        f(
            4,
            "resource",
            Msg(&AUTOSCALING_V2_RESOURCE_METRIC_STATUS),
            Ptr,
            true,
        ),
        f(
            5,
            "external",
            Msg(&AUTOSCALING_V2_EXTERNAL_METRIC_STATUS),
            Ptr,
            true,
        ),
        f(
            7,
            "containerResource",
            Msg(&AUTOSCALING_V2_CONTAINER_RESOURCE_METRIC_STATUS),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_OBJECT_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ObjectMetricStatus",
    fields: &[
        f(
            1,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
        f(
            2,
            "current",
            Msg(&AUTOSCALING_V2_METRIC_VALUE_STATUS),
            Value,
            false,
        ),
        f(
            3,
            "describedObject",
            Msg(&AUTOSCALING_V2_CROSS_VERSION_OBJECT_REFERENCE),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_METRIC_VALUE_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.MetricValueStatus",
    fields: &[
        f(1, "value", Quantity, Ptr, true),
        f(2, "averageValue", Quantity, Ptr, true),
        f(3, "averageUtilization", I32, Ptr, true),
    ],
};

pub(super) static AUTOSCALING_V2_PODS_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.PodsMetricStatus",
    fields: &[
        f(
            1,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
        f(
            2,
            "current",
            Msg(&AUTOSCALING_V2_METRIC_VALUE_STATUS),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_RESOURCE_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ResourceMetricStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "current",
            Msg(&AUTOSCALING_V2_METRIC_VALUE_STATUS),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_CONTAINER_RESOURCE_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ContainerResourceMetricStatus",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "current",
            Msg(&AUTOSCALING_V2_METRIC_VALUE_STATUS),
            Value,
            false,
        ),
        f(3, "container", Str, Value, false),
    ],
};

pub(super) static AUTOSCALING_V2_EXTERNAL_METRIC_STATUS: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.ExternalMetricStatus",
    fields: &[
        f(
            1,
            "metric",
            Msg(&AUTOSCALING_V2_METRIC_IDENTIFIER),
            Value,
            false,
        ),
        f(
            2,
            "current",
            Msg(&AUTOSCALING_V2_METRIC_VALUE_STATUS),
            Value,
            false,
        ),
    ],
};

pub(super) static AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER_CONDITION: Msg = Msg {
    name: "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
    ],
};

/// Top-level kinds: (apiVersion, kind, message). apiVersion `*` matches any.
pub(super) static CORE_V1_NODE: Msg = Msg {
    name: "k8s.io.api.core.v1.Node",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_NODE_SPEC), Value, true),
        f(3, "status", Msg(&CORE_V1_NODE_STATUS), Value, true),
    ],
};

pub(super) static CORE_V1_NODE_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSpec",
    fields: &[
        f(1, "podCIDR", Str, Value, true),
        f(2, "externalID", Str, Value, true),
        f(3, "providerID", Str, Value, true),
        f(4, "unschedulable", Bool, Value, true),
        f(5, "taints", Msg(&CORE_V1_TAINT), Repeated, true),
        f(
            6,
            "configSource",
            Msg(&CORE_V1_NODE_CONFIG_SOURCE),
            Ptr,
            true,
        ),
        f(7, "podCIDRs", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_TAINT: Msg = Msg {
    name: "k8s.io.api.core.v1.Taint",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "value", Str, Value, true),
        f(3, "effect", Str, Value, false),
        f(4, "timeAdded", Time, Ptr, true),
    ],
};

pub(super) static CORE_V1_NODE_CONFIG_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeConfigSource",
    fields: &[f(
        2,
        "configMap",
        Msg(&CORE_V1_CONFIG_MAP_NODE_CONFIG_SOURCE),
        Ptr,
        true,
    )],
};

pub(super) static CORE_V1_CONFIG_MAP_NODE_CONFIG_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.ConfigMapNodeConfigSource",
    fields: &[
        f(1, "namespace", Str, Value, false),
        f(2, "name", Str, Value, false),
        f(3, "uid", Str, Value, true),
        f(4, "resourceVersion", Str, Value, true),
        f(5, "kubeletConfigKey", Str, Value, false),
    ],
};

pub(super) static CORE_V1_NODE_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeStatus",
    fields: &[
        f(1, "capacity", Quantity, Map, true),
        f(2, "allocatable", Quantity, Map, true),
        f(3, "phase", Str, Value, true),
        f(
            4,
            "conditions",
            Msg(&CORE_V1_NODE_CONDITION),
            Repeated,
            true,
        ),
        f(5, "addresses", Msg(&CORE_V1_NODE_ADDRESS), Repeated, true),
        f(
            6,
            "daemonEndpoints",
            Msg(&CORE_V1_NODE_DAEMON_ENDPOINTS),
            Value,
            true,
        ),
        f(7, "nodeInfo", Msg(&CORE_V1_NODE_SYSTEM_INFO), Value, true),
        f(8, "images", Msg(&CORE_V1_CONTAINER_IMAGE), Repeated, true),
        f(9, "volumesInUse", Str, Repeated, true),
        f(
            10,
            "volumesAttached",
            Msg(&CORE_V1_ATTACHED_VOLUME),
            Repeated,
            true,
        ),
        f(11, "config", Msg(&CORE_V1_NODE_CONFIG_STATUS), Ptr, true),
        f(
            12,
            "runtimeHandlers",
            Msg(&CORE_V1_NODE_RUNTIME_HANDLER),
            Repeated,
            true,
        ),
        f(13, "features", Msg(&CORE_V1_NODE_FEATURES), Ptr, true),
        f(14, "declaredFeatures", Str, Repeated, true),
    ],
};

pub(super) static CORE_V1_NODE_CONDITION: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastHeartbeatTime", Time, Value, true),
        f(4, "lastTransitionTime", Time, Value, true),
        f(5, "reason", Str, Value, true),
        f(6, "message", Str, Value, true),
    ],
};

pub(super) static CORE_V1_NODE_ADDRESS: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeAddress",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "address", Str, Value, false),
    ],
};

pub(super) static CORE_V1_NODE_DAEMON_ENDPOINTS: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeDaemonEndpoints",
    fields: &[f(
        1,
        "kubeletEndpoint",
        Msg(&CORE_V1_DAEMON_ENDPOINT),
        Value,
        true,
    )],
};

pub(super) static CORE_V1_DAEMON_ENDPOINT: Msg = Msg {
    name: "k8s.io.api.core.v1.DaemonEndpoint",
    fields: &[f(1, "Port", I32, Value, false)],
};

pub(super) static CORE_V1_NODE_SYSTEM_INFO: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSystemInfo",
    fields: &[
        f(1, "machineID", Str, Value, false),
        f(2, "systemUUID", Str, Value, false),
        f(3, "bootID", Str, Value, false),
        f(4, "kernelVersion", Str, Value, false),
        f(5, "osImage", Str, Value, false),
        f(6, "containerRuntimeVersion", Str, Value, false),
        f(7, "kubeletVersion", Str, Value, false),
        f(8, "kubeProxyVersion", Str, Value, false),
        f(9, "operatingSystem", Str, Value, false),
        f(10, "architecture", Str, Value, false),
        f(11, "swap", Msg(&CORE_V1_NODE_SWAP_STATUS), Ptr, true),
    ],
};

pub(super) static CORE_V1_NODE_SWAP_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeSwapStatus",
    fields: &[f(1, "capacity", I64, Ptr, true)],
};

pub(super) static CORE_V1_CONTAINER_IMAGE: Msg = Msg {
    name: "k8s.io.api.core.v1.ContainerImage",
    fields: &[
        f(1, "names", Str, Repeated, false),
        f(2, "sizeBytes", I64, Value, true),
    ],
};

pub(super) static CORE_V1_ATTACHED_VOLUME: Msg = Msg {
    name: "k8s.io.api.core.v1.AttachedVolume",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "devicePath", Str, Value, false),
    ],
};

pub(super) static CORE_V1_NODE_CONFIG_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeConfigStatus",
    fields: &[
        f(1, "assigned", Msg(&CORE_V1_NODE_CONFIG_SOURCE), Ptr, true),
        f(2, "active", Msg(&CORE_V1_NODE_CONFIG_SOURCE), Ptr, true),
        f(
            3,
            "lastKnownGood",
            Msg(&CORE_V1_NODE_CONFIG_SOURCE),
            Ptr,
            true,
        ),
        f(4, "error", Str, Value, true),
    ],
};

pub(super) static CORE_V1_NODE_RUNTIME_HANDLER: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeRuntimeHandler",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "features",
            Msg(&CORE_V1_NODE_RUNTIME_HANDLER_FEATURES),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_NODE_RUNTIME_HANDLER_FEATURES: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeRuntimeHandlerFeatures",
    fields: &[
        f(1, "recursiveReadOnlyMounts", Bool, Ptr, true),
        f(2, "userNamespaces", Bool, Ptr, true),
    ],
};

pub(super) static CORE_V1_NODE_FEATURES: Msg = Msg {
    name: "k8s.io.api.core.v1.NodeFeatures",
    fields: &[f(1, "supplementalGroupsPolicy", Bool, Ptr, true)],
};

pub(super) static META_V1_LIST_META: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta",
    fields: &[
        f(1, "selfLink", Str, Value, true),
        f(2, "resourceVersion", Str, Value, true),
        f(3, "continue", Str, Value, true),
        f(4, "remainingItemCount", I64, Ptr, true),
    ],
};

pub(super) static META_V1_STATUS: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
    fields: &[
        f(1, "metadata", Msg(&META_V1_LIST_META), Value, true),
        f(2, "status", Str, Value, true),
        f(3, "message", Str, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "details", Msg(&META_V1_STATUS_DETAILS), Ptr, true),
        f(6, "code", I32, Value, true),
    ],
};

pub(super) static META_V1_STATUS_DETAILS: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.StatusDetails",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "group", Str, Value, true),
        f(3, "kind", Str, Value, true),
        f(4, "causes", Msg(&META_V1_STATUS_CAUSE), Repeated, true),
        f(5, "retryAfterSeconds", I32, Value, true),
        f(6, "uid", Str, Value, true),
    ],
};

pub(super) static META_V1_STATUS_CAUSE: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.StatusCause",
    fields: &[
        f(1, "reason", Str, Value, true),
        f(2, "message", Str, Value, true),
        f(3, "field", Str, Value, true),
    ],
};

pub(super) static META_V1_PARTIAL_OBJECT_METADATA: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.PartialObjectMetadata",
    fields: &[f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true)],
};

pub(super) static AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SubjectAccessReview",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_LOCAL_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "k8s.io.api.authorization.v1.LocalSubjectAccessReview",
    fields: AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW.fields,
};

pub(super) static AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW_SPEC: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SubjectAccessReviewSpec",
    fields: &[
        f(
            1,
            "resourceAttributes",
            Msg(&AUTHORIZATION_V1_RESOURCE_ATTRIBUTES),
            Ptr,
            true,
        ),
        f(
            2,
            "nonResourceAttributes",
            Msg(&AUTHORIZATION_V1_NON_RESOURCE_ATTRIBUTES),
            Ptr,
            true,
        ),
        f(3, "user", Str, Value, true),
        f(4, "groups", Str, Repeated, true),
        f(5, "extra", StringList, Map, true),
        f(6, "uid", Str, Value, true),
    ],
};

pub(super) static AUTHORIZATION_V1_RESOURCE_ATTRIBUTES: Msg = Msg {
    name: "k8s.io.api.authorization.v1.ResourceAttributes",
    fields: &[
        f(1, "namespace", Str, Value, true),
        f(2, "verb", Str, Value, true),
        f(3, "group", Str, Value, true),
        f(4, "version", Str, Value, true),
        f(5, "resource", Str, Value, true),
        f(6, "subresource", Str, Value, true),
        f(7, "name", Str, Value, true),
        f(
            8,
            "fieldSelector",
            Msg(&AUTHORIZATION_V1_FIELD_SELECTOR_ATTRIBUTES),
            Ptr,
            true,
        ),
        f(
            9,
            "labelSelector",
            Msg(&AUTHORIZATION_V1_LABEL_SELECTOR_ATTRIBUTES),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_FIELD_SELECTOR_ATTRIBUTES: Msg = Msg {
    name: "k8s.io.api.authorization.v1.FieldSelectorAttributes",
    fields: &[
        f(1, "rawSelector", Str, Value, true),
        f(
            2,
            "requirements",
            Msg(&META_V1_FIELD_SELECTOR_REQUIREMENT),
            Repeated,
            true,
        ),
    ],
};

pub(super) static META_V1_FIELD_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "operator", Str, Value, false),
        f(3, "values", Str, Repeated, true),
    ],
};

pub(super) static AUTHORIZATION_V1_LABEL_SELECTOR_ATTRIBUTES: Msg = Msg {
    name: "k8s.io.api.authorization.v1.LabelSelectorAttributes",
    fields: &[
        f(1, "rawSelector", Str, Value, true),
        f(
            2,
            "requirements",
            Msg(&META_V1_LABEL_SELECTOR_REQUIREMENT),
            Repeated,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_NON_RESOURCE_ATTRIBUTES: Msg = Msg {
    name: "k8s.io.api.authorization.v1.NonResourceAttributes",
    fields: &[
        f(1, "path", Str, Value, true),
        f(2, "verb", Str, Value, true),
    ],
};

pub(super) static AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW_STATUS: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SubjectAccessReviewStatus",
    fields: &[
        f(1, "allowed", Bool, Value, false),
        f(2, "reason", Str, Value, true),
        f(3, "evaluationError", Str, Value, true),
        f(4, "denied", Bool, Value, true),
    ],
};

pub(super) static AUTHORIZATION_V1_SELF_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTHORIZATION_V1_SELF_SUBJECT_ACCESS_REVIEW_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_SELF_SUBJECT_ACCESS_REVIEW_SPEC: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SelfSubjectAccessReviewSpec",
    fields: &[
        f(
            1,
            "resourceAttributes",
            Msg(&AUTHORIZATION_V1_RESOURCE_ATTRIBUTES),
            Ptr,
            true,
        ),
        f(
            2,
            "nonResourceAttributes",
            Msg(&AUTHORIZATION_V1_NON_RESOURCE_ATTRIBUTES),
            Ptr,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_SELF_SUBJECT_RULES_REVIEW: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTHORIZATION_V1_SELF_SUBJECT_RULES_REVIEW_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&AUTHORIZATION_V1_SUBJECT_RULES_REVIEW_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHORIZATION_V1_SELF_SUBJECT_RULES_REVIEW_SPEC: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SelfSubjectRulesReviewSpec",
    fields: &[f(1, "namespace", Str, Value, true)],
};

pub(super) static AUTHORIZATION_V1_SUBJECT_RULES_REVIEW_STATUS: Msg = Msg {
    name: "k8s.io.api.authorization.v1.SubjectRulesReviewStatus",
    fields: &[
        f(
            1,
            "resourceRules",
            Msg(&AUTHORIZATION_V1_RESOURCE_RULE),
            Repeated,
            false,
        ),
        f(
            2,
            "nonResourceRules",
            Msg(&AUTHORIZATION_V1_NON_RESOURCE_RULE),
            Repeated,
            false,
        ),
        f(3, "incomplete", Bool, Value, false),
        f(4, "evaluationError", Str, Value, true),
    ],
};

pub(super) static AUTHORIZATION_V1_RESOURCE_RULE: Msg = Msg {
    name: "k8s.io.api.authorization.v1.ResourceRule",
    fields: &[
        f(1, "verbs", Str, Repeated, false),
        f(2, "apiGroups", Str, Repeated, true),
        f(3, "resources", Str, Repeated, true),
        f(4, "resourceNames", Str, Repeated, true),
    ],
};

pub(super) static AUTHORIZATION_V1_NON_RESOURCE_RULE: Msg = Msg {
    name: "k8s.io.api.authorization.v1.NonResourceRule",
    fields: &[
        f(1, "verbs", Str, Repeated, false),
        f(2, "nonResourceURLs", Str, Repeated, true),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REVIEW: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenReview",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&AUTHENTICATION_V1_TOKEN_REVIEW_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&AUTHENTICATION_V1_TOKEN_REVIEW_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REVIEW_SPEC: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenReviewSpec",
    fields: &[
        f(1, "token", Str, Value, true),
        f(2, "audiences", Str, Repeated, true),
    ],
};

pub(super) static AUTHENTICATION_V1_TOKEN_REVIEW_STATUS: Msg = Msg {
    name: "k8s.io.api.authentication.v1.TokenReviewStatus",
    fields: &[
        f(1, "authenticated", Bool, Value, true),
        f(2, "user", Msg(&AUTHENTICATION_V1_USER_INFO), Value, true),
        f(3, "error", Str, Value, true),
        f(4, "audiences", Str, Repeated, true),
    ],
};

pub(super) static AUTHENTICATION_V1_USER_INFO: Msg = Msg {
    name: "k8s.io.api.authentication.v1.UserInfo",
    fields: &[
        f(1, "username", Str, Value, true),
        f(2, "uid", Str, Value, true),
        f(3, "groups", Str, Repeated, true),
        f(4, "extra", StringList, Map, true),
    ],
};

pub(super) static AUTHENTICATION_V1_SELF_SUBJECT_REVIEW: Msg = Msg {
    name: "k8s.io.api.authentication.v1.SelfSubjectReview",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "status",
            Msg(&AUTHENTICATION_V1_SELF_SUBJECT_REVIEW_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static AUTHENTICATION_V1_SELF_SUBJECT_REVIEW_STATUS: Msg = Msg {
    name: "k8s.io.api.authentication.v1.SelfSubjectReviewStatus",
    fields: &[f(
        1,
        "userInfo",
        Msg(&AUTHENTICATION_V1_USER_INFO),
        Value,
        true,
    )],
};

pub(super) static CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST: Msg = Msg {
    name: "k8s.io.api.certificates.v1.CertificateSigningRequest",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_SPEC: Msg = Msg {
    name: "k8s.io.api.certificates.v1.CertificateSigningRequestSpec",
    fields: &[
        f(1, "request", Bytes, Value, false),
        f(2, "username", Str, Value, true),
        f(3, "uid", Str, Value, true),
        f(4, "groups", Str, Repeated, true),
        f(5, "usages", Str, Repeated, true),
        f(6, "extra", StringList, Map, true),
        f(7, "signerName", Str, Value, false),
        f(8, "expirationSeconds", I32, Ptr, true),
    ],
};

pub(super) static CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_STATUS: Msg = Msg {
    name: "k8s.io.api.certificates.v1.CertificateSigningRequestStatus",
    fields: &[
        f(
            1,
            "conditions",
            Msg(&CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_CONDITION),
            Repeated,
            true,
        ),
        f(2, "certificate", Bytes, Value, true),
    ],
};

pub(super) static CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST_CONDITION: Msg = Msg {
    name: "k8s.io.api.certificates.v1.CertificateSigningRequestCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "reason", Str, Value, true),
        f(3, "message", Str, Value, true),
        f(4, "lastUpdateTime", Time, Value, true),
        f(5, "lastTransitionTime", Time, Value, true),
        f(6, "status", Str, Value, false),
    ],
};

pub(super) static EVENTS_V1_EVENT: Msg = Msg {
    name: "k8s.io.api.events.v1.Event",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "eventTime", MicroTime, Value, false),
        f(3, "series", Msg(&EVENTS_V1_EVENT_SERIES), Ptr, true),
        f(4, "reportingController", Str, Value, true),
        f(5, "reportingInstance", Str, Value, true),
        f(6, "action", Str, Value, true),
        f(7, "reason", Str, Value, true),
        f(8, "regarding", Msg(&CORE_V1_OBJECT_REFERENCE), Value, true),
        f(9, "related", Msg(&CORE_V1_OBJECT_REFERENCE), Ptr, true),
        f(10, "note", Str, Value, true),
        f(11, "type", Str, Value, true),
        f(
            12,
            "deprecatedSource",
            Msg(&CORE_V1_EVENT_SOURCE),
            Value,
            true,
        ),
        f(13, "deprecatedFirstTimestamp", Time, Value, true),
        f(14, "deprecatedLastTimestamp", Time, Value, true),
        f(15, "deprecatedCount", I32, Value, true),
    ],
};

pub(super) static EVENTS_V1_EVENT_SERIES: Msg = Msg {
    name: "k8s.io.api.events.v1.EventSeries",
    fields: &[
        f(1, "count", I32, Value, false),
        f(2, "lastObservedTime", MicroTime, Value, false),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_SPEC),
            Value,
            false,
        ),
        f(
            3,
            "status",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_SPEC: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
    fields: &[
        f(1, "group", Str, Value, false),
        f(
            3,
            "names",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_NAMES),
            Value,
            false,
        ),
        f(4, "scope", Str, Value, false),
        f(
            7,
            "versions",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_VERSION),
            Repeated,
            false,
        ),
        f(
            9,
            "conversion",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_CONVERSION),
            Ptr,
            true,
        ),
        f(10, "preserveUnknownFields", Bool, Value, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_NAMES: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
    fields: &[
        f(1, "plural", Str, Value, false),
        f(2, "singular", Str, Value, true),
        f(3, "shortNames", Str, Repeated, true),
        f(4, "kind", Str, Value, false),
        f(5, "listKind", Str, Value, true),
        f(6, "categories", Str, Repeated, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_VERSION: Msg = Msg {
    name:
        "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "served", Bool, Value, false),
        f(3, "storage", Bool, Value, false),
        f(
            4,
            "schema",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_VALIDATION),
            Ptr,
            true,
        ),
        f(
            5,
            "subresources",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCES),
            Ptr,
            true,
        ),
        f(
            6,
            "additionalPrinterColumns",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_COLUMN_DEFINITION),
            Repeated,
            true,
        ),
        f(7, "deprecated", Bool, Value, true),
        f(8, "deprecationWarning", Str, Ptr, true),
        f(
            9,
            "selectableFields",
            Msg(&APIEXTENSIONS_V1_SELECTABLE_FIELD),
            Repeated,
            true,
        ),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_VALIDATION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation",
    fields: &[f(
        1,
        "openAPIV3Schema",
        Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
        Ptr,
        true,
    )],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCES: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresources",
    fields: &[
        f(
            1,
            "status",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCE_STATUS),
            Ptr,
            true,
        ),
        f(
            2,
            "scale",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCE_SCALE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCE_STATUS: Msg = Msg {
    name:
        "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceStatus",
    fields: &[],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_SUBRESOURCE_SCALE: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceScale",
    fields: &[
        f(1, "specReplicasPath", Str, Value, false),
        f(2, "statusReplicasPath", Str, Value, false),
        f(3, "labelSelectorPath", Str, Ptr, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_COLUMN_DEFINITION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceColumnDefinition",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "type", Str, Value, false),
        f(3, "format", Str, Value, true),
        f(4, "description", Str, Value, true),
        f(5, "priority", I32, Value, true),
        f(6, "jsonPath", Str, Value, false),
    ],
};

pub(super) static APIEXTENSIONS_V1_SELECTABLE_FIELD: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.SelectableField",
    fields: &[f(1, "jsonPath", Str, Value, false)],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_CONVERSION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceConversion",
    fields: &[
        f(1, "strategy", Str, Value, false),
        f(
            2,
            "webhook",
            Msg(&APIEXTENSIONS_V1_WEBHOOK_CONVERSION),
            Ptr,
            true,
        ),
    ],
};

pub(super) static APIEXTENSIONS_V1_WEBHOOK_CONVERSION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion",
    fields: &[
        f(
            2,
            "clientConfig",
            Msg(&APIEXTENSIONS_V1_WEBHOOK_CLIENT_CONFIG),
            Ptr,
            true,
        ),
        f(3, "conversionReviewVersions", Str, Repeated, false),
    ],
};

pub(super) static APIEXTENSIONS_V1_WEBHOOK_CLIENT_CONFIG: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookClientConfig",
    fields: &[
        f(
            1,
            "service",
            Msg(&APIEXTENSIONS_V1_SERVICE_REFERENCE),
            Ptr,
            true,
        ),
        f(2, "caBundle", Bytes, Value, true),
        f(3, "url", Str, Ptr, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_SERVICE_REFERENCE: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.ServiceReference",
    fields: &[
        f(1, "namespace", Str, Value, false),
        f(2, "name", Str, Value, false),
        f(3, "path", Str, Ptr, true),
        f(4, "port", I32, Ptr, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_STATUS: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
    fields: &[
        f(
            1,
            "conditions",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_CONDITION),
            Repeated,
            true,
        ),
        f(
            2,
            "acceptedNames",
            Msg(&APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_NAMES),
            Value,
            false,
        ),
        f(3, "storedVersions", Str, Repeated, false),
        f(4, "observedGeneration", I64, Value, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION_CONDITION: Msg = Msg {
    name:
        "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "lastTransitionTime", Time, Value, true),
        f(4, "reason", Str, Value, true),
        f(5, "message", Str, Value, true),
        f(6, "observedGeneration", I64, Value, true),
    ],
};

/// Recursive; `default`/`example`/`enum` are raw JSON; `items`,
/// `additionalProperties`/`additionalItems` and `dependencies` values have the
/// either-or JSON forms of their Go types.
pub(super) static APIEXTENSIONS_V1_JSON_SCHEMA_PROPS: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
    fields: &[
        f(1, "id", Str, Value, true),
        f(2, "$schema", Str, Value, true),
        f(3, "$ref", Str, Ptr, true),
        f(4, "description", Str, Value, true),
        f(5, "type", Str, Value, true),
        f(6, "format", Str, Value, true),
        f(7, "title", Str, Value, true),
        f(8, "default", RawJson, Ptr, true),
        f(9, "maximum", F64, Ptr, true),
        f(10, "exclusiveMaximum", Bool, Value, true),
        f(11, "minimum", F64, Ptr, true),
        f(12, "exclusiveMinimum", Bool, Value, true),
        f(13, "maxLength", I64, Ptr, true),
        f(14, "minLength", I64, Ptr, true),
        f(15, "pattern", Str, Value, true),
        f(16, "maxItems", I64, Ptr, true),
        f(17, "minItems", I64, Ptr, true),
        f(18, "uniqueItems", Bool, Value, true),
        f(19, "multipleOf", F64, Ptr, true),
        f(20, "enum", RawJson, Repeated, true),
        f(21, "maxProperties", I64, Ptr, true),
        f(22, "minProperties", I64, Ptr, true),
        f(23, "required", Str, Repeated, true),
        f(
            24,
            "items",
            SchemaOrArray(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Ptr,
            true,
        ),
        f(
            25,
            "allOf",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Repeated,
            true,
        ),
        f(
            26,
            "oneOf",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Repeated,
            true,
        ),
        f(
            27,
            "anyOf",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Repeated,
            true,
        ),
        f(
            28,
            "not",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Ptr,
            true,
        ),
        f(
            29,
            "properties",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Map,
            true,
        ),
        f(
            30,
            "additionalProperties",
            SchemaOrBool(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Ptr,
            true,
        ),
        f(
            31,
            "patternProperties",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Map,
            true,
        ),
        f(
            32,
            "dependencies",
            SchemaOrStrings(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Map,
            true,
        ),
        f(
            33,
            "additionalItems",
            SchemaOrBool(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Ptr,
            true,
        ),
        f(
            34,
            "definitions",
            Msg(&APIEXTENSIONS_V1_JSON_SCHEMA_PROPS),
            Map,
            true,
        ),
        f(
            35,
            "externalDocs",
            Msg(&APIEXTENSIONS_V1_EXTERNAL_DOCUMENTATION),
            Ptr,
            true,
        ),
        f(36, "example", RawJson, Ptr, true),
        f(37, "nullable", Bool, Value, true),
        f(38, "x-kubernetes-preserve-unknown-fields", Bool, Ptr, true),
        f(39, "x-kubernetes-embedded-resource", Bool, Value, true),
        f(40, "x-kubernetes-int-or-string", Bool, Value, true),
        f(41, "x-kubernetes-list-map-keys", Str, Repeated, true),
        f(42, "x-kubernetes-list-type", Str, Ptr, true),
        f(43, "x-kubernetes-map-type", Str, Ptr, true),
        f(
            44,
            "x-kubernetes-validations",
            Msg(&APIEXTENSIONS_V1_VALIDATION_RULE),
            Repeated,
            true,
        ),
    ],
};

pub(super) static APIEXTENSIONS_V1_EXTERNAL_DOCUMENTATION: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.ExternalDocumentation",
    fields: &[
        f(1, "description", Str, Value, true),
        f(2, "url", Str, Value, true),
    ],
};

pub(super) static APIEXTENSIONS_V1_VALIDATION_RULE: Msg = Msg {
    name: "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
    fields: &[
        f(1, "rule", Str, Value, false),
        f(2, "message", Str, Value, true),
        f(3, "messageExpression", Str, Value, true),
        f(4, "reason", Str, Ptr, true),
        f(5, "fieldPath", Str, Value, true),
        f(6, "optionalOldSelf", Bool, Ptr, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_WEBHOOK_CONFIGURATION: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "webhooks",
            Msg(&ADMISSIONREGISTRATION_V1_VALIDATING_WEBHOOK),
            Repeated,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_WEBHOOK: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingWebhook",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "clientConfig",
            Msg(&ADMISSIONREGISTRATION_V1_WEBHOOK_CLIENT_CONFIG),
            Value,
            false,
        ),
        f(
            3,
            "rules",
            Msg(&ADMISSIONREGISTRATION_V1_RULE_WITH_OPERATIONS),
            Repeated,
            true,
        ),
        f(4, "failurePolicy", Str, Ptr, true),
        f(
            5,
            "namespaceSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(6, "sideEffects", Str, Ptr, false),
        f(7, "timeoutSeconds", I32, Ptr, true),
        f(8, "admissionReviewVersions", Str, Repeated, false),
        f(9, "matchPolicy", Str, Ptr, true),
        f(
            10,
            "objectSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(
            11,
            "matchConditions",
            Msg(&ADMISSIONREGISTRATION_V1_MATCH_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_MUTATING_WEBHOOK_CONFIGURATION: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "webhooks",
            Msg(&ADMISSIONREGISTRATION_V1_MUTATING_WEBHOOK),
            Repeated,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_MUTATING_WEBHOOK: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.MutatingWebhook",
    fields: &[
        f(1, "name", Str, Value, false),
        f(
            2,
            "clientConfig",
            Msg(&ADMISSIONREGISTRATION_V1_WEBHOOK_CLIENT_CONFIG),
            Value,
            false,
        ),
        f(
            3,
            "rules",
            Msg(&ADMISSIONREGISTRATION_V1_RULE_WITH_OPERATIONS),
            Repeated,
            true,
        ),
        f(4, "failurePolicy", Str, Ptr, true),
        f(
            5,
            "namespaceSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(6, "sideEffects", Str, Ptr, false),
        f(7, "timeoutSeconds", I32, Ptr, true),
        f(8, "admissionReviewVersions", Str, Repeated, false),
        f(9, "matchPolicy", Str, Ptr, true),
        f(10, "reinvocationPolicy", Str, Ptr, true),
        f(
            11,
            "objectSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(
            12,
            "matchConditions",
            Msg(&ADMISSIONREGISTRATION_V1_MATCH_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_WEBHOOK_CLIENT_CONFIG: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.WebhookClientConfig",
    fields: &[
        f(
            1,
            "service",
            Msg(&ADMISSIONREGISTRATION_V1_SERVICE_REFERENCE),
            Ptr,
            true,
        ),
        f(2, "caBundle", Bytes, Value, true),
        f(3, "url", Str, Ptr, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_SERVICE_REFERENCE: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ServiceReference",
    fields: &[
        f(1, "namespace", Str, Value, false),
        f(2, "name", Str, Value, false),
        f(3, "path", Str, Ptr, true),
        f(4, "port", I32, Ptr, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_RULE_WITH_OPERATIONS: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.RuleWithOperations",
    fields: &[
        f(1, "operations", Str, Repeated, true),
        f(2, "", Msg(&ADMISSIONREGISTRATION_V1_RULE), Inline, false),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_RULE: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.Rule",
    fields: &[
        f(1, "apiGroups", Str, Repeated, true),
        f(2, "apiVersions", Str, Repeated, true),
        f(3, "resources", Str, Repeated, true),
        f(4, "scope", Str, Ptr, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_MATCH_CONDITION: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.MatchCondition",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "expression", Str, Value, false),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicy",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_SPEC),
            Value,
            true,
        ),
        f(
            3,
            "status",
            Msg(&ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_SPEC: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
    fields: &[
        f(
            1,
            "paramKind",
            Msg(&ADMISSIONREGISTRATION_V1_PARAM_KIND),
            Ptr,
            true,
        ),
        f(
            2,
            "matchConstraints",
            Msg(&ADMISSIONREGISTRATION_V1_MATCH_RESOURCES),
            Ptr,
            true,
        ),
        f(
            3,
            "validations",
            Msg(&ADMISSIONREGISTRATION_V1_VALIDATION),
            Repeated,
            true,
        ),
        f(4, "failurePolicy", Str, Ptr, true),
        f(
            5,
            "auditAnnotations",
            Msg(&ADMISSIONREGISTRATION_V1_AUDIT_ANNOTATION),
            Repeated,
            true,
        ),
        f(
            6,
            "matchConditions",
            Msg(&ADMISSIONREGISTRATION_V1_MATCH_CONDITION),
            Repeated,
            true,
        ),
        f(
            7,
            "variables",
            Msg(&ADMISSIONREGISTRATION_V1_VARIABLE),
            Repeated,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_PARAM_KIND: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ParamKind",
    fields: &[
        f(1, "apiVersion", Str, Value, true),
        f(2, "kind", Str, Value, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_MATCH_RESOURCES: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.MatchResources",
    fields: &[
        f(
            1,
            "namespaceSelector",
            Msg(&META_V1_LABEL_SELECTOR),
            Ptr,
            true,
        ),
        f(2, "objectSelector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(
            3,
            "resourceRules",
            Msg(&ADMISSIONREGISTRATION_V1_NAMED_RULE_WITH_OPERATIONS),
            Repeated,
            true,
        ),
        f(
            4,
            "excludeResourceRules",
            Msg(&ADMISSIONREGISTRATION_V1_NAMED_RULE_WITH_OPERATIONS),
            Repeated,
            true,
        ),
        f(7, "matchPolicy", Str, Ptr, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_NAMED_RULE_WITH_OPERATIONS: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.NamedRuleWithOperations",
    fields: &[
        f(1, "resourceNames", Str, Repeated, true),
        f(
            2,
            "",
            Msg(&ADMISSIONREGISTRATION_V1_RULE_WITH_OPERATIONS),
            Inline,
            false,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATION: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.Validation",
    fields: &[
        f(1, "expression", Str, Value, false),
        f(2, "message", Str, Value, true),
        f(3, "reason", Str, Ptr, true),
        f(4, "messageExpression", Str, Value, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_AUDIT_ANNOTATION: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.AuditAnnotation",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "valueExpression", Str, Value, false),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VARIABLE: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.Variable",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "expression", Str, Value, false),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_STATUS: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
    fields: &[
        f(1, "observedGeneration", I64, Value, true),
        f(
            2,
            "typeChecking",
            Msg(&ADMISSIONREGISTRATION_V1_TYPE_CHECKING),
            Ptr,
            true,
        ),
        f(3, "conditions", Msg(&META_V1_CONDITION), Repeated, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_TYPE_CHECKING: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.TypeChecking",
    fields: &[f(
        1,
        "expressionWarnings",
        Msg(&ADMISSIONREGISTRATION_V1_EXPRESSION_WARNING),
        Repeated,
        true,
    )],
};

pub(super) static ADMISSIONREGISTRATION_V1_EXPRESSION_WARNING: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ExpressionWarning",
    fields: &[
        f(2, "fieldRef", Str, Value, false),
        f(3, "warning", Str, Value, false),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_BINDING: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "spec",
            Msg(&ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_BINDING_SPEC),
            Value,
            true,
        ),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_BINDING_SPEC: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
    fields: &[
        f(1, "policyName", Str, Value, true),
        f(
            2,
            "paramRef",
            Msg(&ADMISSIONREGISTRATION_V1_PARAM_REF),
            Ptr,
            true,
        ),
        f(
            3,
            "matchResources",
            Msg(&ADMISSIONREGISTRATION_V1_MATCH_RESOURCES),
            Ptr,
            true,
        ),
        f(4, "validationActions", Str, Repeated, true),
    ],
};

pub(super) static ADMISSIONREGISTRATION_V1_PARAM_REF: Msg = Msg {
    name: "k8s.io.api.admissionregistration.v1.ParamRef",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "namespace", Str, Value, true),
        f(3, "selector", Msg(&META_V1_LABEL_SELECTOR), Ptr, true),
        f(4, "parameterNotFoundAction", Str, Ptr, true),
    ],
};

// core/v1 PersistentVolume and storage.k8s.io/v1 StorageClass, added by hand (tags from the
// k8s.io/api generated.proto files). PersistentVolumeSource carries the sources whose messages
// the pod VolumeSource shares, plus `local` and `csi`; the removed in-tree plugins with
// PV-only messages (glusterfs, rbd, iscsi, cinder, cephfs, flexVolume, azureFile, scaleIO,
// storageos) are not decoded.
pub(super) static CORE_V1_PERSISTENT_VOLUME: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolume",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "spec", Msg(&CORE_V1_PERSISTENT_VOLUME_SPEC), Value, true),
        f(
            3,
            "status",
            Msg(&CORE_V1_PERSISTENT_VOLUME_STATUS),
            Value,
            true,
        ),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_SPEC: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeSpec",
    fields: &[
        f(1, "capacity", Quantity, Map, true),
        f(2, "", Msg(&CORE_V1_PERSISTENT_VOLUME_SOURCE), Inline, false),
        f(3, "accessModes", Str, Repeated, true),
        f(4, "claimRef", Msg(&CORE_V1_OBJECT_REFERENCE), Ptr, true),
        f(5, "persistentVolumeReclaimPolicy", Str, Value, true),
        f(6, "storageClassName", Str, Value, true),
        f(7, "mountOptions", Str, Repeated, true),
        f(8, "volumeMode", Str, Ptr, true),
        f(
            9,
            "nodeAffinity",
            Msg(&CORE_V1_VOLUME_NODE_AFFINITY),
            Ptr,
            true,
        ),
        f(10, "volumeAttributesClassName", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeSource",
    fields: &[
        f(
            1,
            "gcePersistentDisk",
            Msg(&CORE_V1_GCEPERSISTENT_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            2,
            "awsElasticBlockStore",
            Msg(&CORE_V1_AWSELASTIC_BLOCK_STORE_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            3,
            "hostPath",
            Msg(&CORE_V1_HOST_PATH_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(5, "nfs", Msg(&CORE_V1_NFSVOLUME_SOURCE), Ptr, true),
        f(10, "fc", Msg(&CORE_V1_FCVOLUME_SOURCE), Ptr, true),
        f(
            11,
            "flocker",
            Msg(&CORE_V1_FLOCKER_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            14,
            "vsphereVolume",
            Msg(&CORE_V1_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            15,
            "quobyte",
            Msg(&CORE_V1_QUOBYTE_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            16,
            "azureDisk",
            Msg(&CORE_V1_AZURE_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            17,
            "photonPersistentDisk",
            Msg(&CORE_V1_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(
            18,
            "portworxVolume",
            Msg(&CORE_V1_PORTWORX_VOLUME_SOURCE),
            Ptr,
            true,
        ),
        f(20, "local", Msg(&CORE_V1_LOCAL_VOLUME_SOURCE), Ptr, true),
        f(
            22,
            "csi",
            Msg(&CORE_V1_CSIPERSISTENT_VOLUME_SOURCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_LOCAL_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.LocalVolumeSource",
    fields: &[
        f(1, "path", Str, Value, false),
        f(2, "fsType", Str, Ptr, true),
    ],
};

pub(super) static CORE_V1_SECRET_REFERENCE: Msg = Msg {
    name: "k8s.io.api.core.v1.SecretReference",
    fields: &[
        f(1, "name", Str, Value, true),
        f(2, "namespace", Str, Value, true),
    ],
};

pub(super) static CORE_V1_CSIPERSISTENT_VOLUME_SOURCE: Msg = Msg {
    name: "k8s.io.api.core.v1.CSIPersistentVolumeSource",
    fields: &[
        f(1, "driver", Str, Value, false),
        f(2, "volumeHandle", Str, Value, false),
        f(3, "readOnly", Bool, Value, true),
        f(4, "fsType", Str, Value, true),
        f(5, "volumeAttributes", Str, Map, true),
        f(
            6,
            "controllerPublishSecretRef",
            Msg(&CORE_V1_SECRET_REFERENCE),
            Ptr,
            true,
        ),
        f(
            7,
            "nodeStageSecretRef",
            Msg(&CORE_V1_SECRET_REFERENCE),
            Ptr,
            true,
        ),
        f(
            8,
            "nodePublishSecretRef",
            Msg(&CORE_V1_SECRET_REFERENCE),
            Ptr,
            true,
        ),
        f(
            9,
            "controllerExpandSecretRef",
            Msg(&CORE_V1_SECRET_REFERENCE),
            Ptr,
            true,
        ),
        f(
            10,
            "nodeExpandSecretRef",
            Msg(&CORE_V1_SECRET_REFERENCE),
            Ptr,
            true,
        ),
    ],
};

pub(super) static CORE_V1_VOLUME_NODE_AFFINITY: Msg = Msg {
    name: "k8s.io.api.core.v1.VolumeNodeAffinity",
    fields: &[f(1, "required", Msg(&CORE_V1_NODE_SELECTOR), Ptr, true)],
};

pub(super) static CORE_V1_PERSISTENT_VOLUME_STATUS: Msg = Msg {
    name: "k8s.io.api.core.v1.PersistentVolumeStatus",
    fields: &[
        f(1, "phase", Str, Value, true),
        f(2, "message", Str, Value, true),
        f(3, "reason", Str, Value, true),
        f(4, "lastPhaseTransitionTime", Time, Ptr, true),
    ],
};

pub(super) static STORAGE_V1_STORAGE_CLASS: Msg = Msg {
    name: "k8s.io.api.storage.v1.StorageClass",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "provisioner", Str, Value, false),
        f(3, "parameters", Str, Map, true),
        f(4, "reclaimPolicy", Str, Ptr, true),
        f(5, "mountOptions", Str, Repeated, true),
        f(6, "allowVolumeExpansion", Bool, Ptr, true),
        f(7, "volumeBindingMode", Str, Ptr, true),
        f(
            8,
            "allowedTopologies",
            Msg(&CORE_V1_TOPOLOGY_SELECTOR_TERM),
            Repeated,
            true,
        ),
    ],
};

pub(super) static CORE_V1_TOPOLOGY_SELECTOR_TERM: Msg = Msg {
    name: "k8s.io.api.core.v1.TopologySelectorTerm",
    fields: &[f(
        1,
        "matchLabelExpressions",
        Msg(&CORE_V1_TOPOLOGY_SELECTOR_LABEL_REQUIREMENT),
        Repeated,
        true,
    )],
};

pub(super) static CORE_V1_TOPOLOGY_SELECTOR_LABEL_REQUIREMENT: Msg = Msg {
    name: "k8s.io.api.core.v1.TopologySelectorLabelRequirement",
    fields: &[
        f(1, "key", Str, Value, false),
        f(2, "values", Str, Repeated, false),
    ],
};

// metrics.k8s.io/v1beta1 (served by the master from the agents' statistics), added by hand:
// tags from k8s.io/metrics/pkg/apis/metrics/v1beta1/generated.proto, JSON names and omitempty
// from the Go types.
pub(super) static METRICS_V1BETA1_NODE_METRICS: Msg = Msg {
    name: "k8s.io.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "timestamp", Time, Value, false),
        f(3, "window", Duration, Value, false),
        f(4, "usage", Quantity, Map, false),
    ],
};

pub(super) static METRICS_V1BETA1_POD_METRICS: Msg = Msg {
    name: "k8s.io.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "timestamp", Time, Value, false),
        f(3, "window", Duration, Value, false),
        f(
            4,
            "containers",
            Msg(&METRICS_V1BETA1_CONTAINER_METRICS),
            Repeated,
            false,
        ),
    ],
};

pub(super) static METRICS_V1BETA1_CONTAINER_METRICS: Msg = Msg {
    name: "k8s.io.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics",
    fields: &[
        f(1, "name", Str, Value, false),
        f(2, "usage", Quantity, Map, false),
    ],
};

// daas.io/v1 Usage (K3s-DaaS's own read-only kind, `daas_apiserver::registry::usage`), messages
// of package io.daas.v1 defined here: tags in field order, omitempty as the Rust type skips.
pub(super) static DAAS_V1_USAGE: Msg = Msg {
    name: "io.daas.v1.Usage",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(2, "status", Msg(&DAAS_V1_USAGE_STATUS), Value, true),
    ],
};

pub(super) static DAAS_V1_USAGE_STATUS: Msg = Msg {
    name: "io.daas.v1.UsageStatus",
    fields: &[
        f(1, "user", Str, Value, true),
        f(2, "account", Msg(&DAAS_V1_USAGE_ACCOUNT), Value, true),
        f(3, "period", I64, Value, true),
        f(4, "current", Msg(&DAAS_V1_USAGE_LINE), Repeated, true),
        f(5, "estimatedCost", I64, Value, true),
        f(
            6,
            "lastSettlement",
            Msg(&DAAS_V1_LAST_SETTLEMENT),
            Value,
            true,
        ),
        f(
            7,
            "conditions",
            Msg(&DAAS_V1_USAGE_CONDITION),
            Repeated,
            true,
        ),
    ],
};

pub(super) static DAAS_V1_USAGE_ACCOUNT: Msg = Msg {
    name: "io.daas.v1.UsageAccount",
    fields: &[
        f(1, "balance", I64, Value, false),
        f(2, "deposited", I64, Value, false),
        f(3, "spent", I64, Value, false),
    ],
};

pub(super) static DAAS_V1_USAGE_LINE: Msg = Msg {
    name: "io.daas.v1.UsageLine",
    fields: &[
        f(1, "node", Str, Value, false),
        f(2, "cpuMs", I64, Value, false),
        f(3, "memMibSeconds", I64, Value, false),
        f(4, "podSeconds", I64, Value, false),
        f(5, "estimatedCost", I64, Value, false),
    ],
};

pub(super) static DAAS_V1_LAST_SETTLEMENT: Msg = Msg {
    name: "io.daas.v1.LastSettlement",
    fields: &[
        f(1, "period", I64, Value, false),
        f(2, "charged", I64, Value, false),
        f(3, "time", Time, Value, true),
    ],
};

pub(super) static DAAS_V1_USAGE_CONDITION: Msg = Msg {
    name: "io.daas.v1.UsageCondition",
    fields: &[
        f(1, "type", Str, Value, false),
        f(2, "status", Str, Value, false),
        f(3, "reason", Str, Value, true),
        f(4, "message", Str, Value, true),
        f(5, "lastTransitionTime", Time, Value, true),
    ],
};

pub(super) static KINDS: &[(&str, &str, &Msg)] = &[
    ("daas.io/v1", "Usage", &DAAS_V1_USAGE),
    (
        "metrics.k8s.io/v1beta1",
        "NodeMetrics",
        &METRICS_V1BETA1_NODE_METRICS,
    ),
    (
        "metrics.k8s.io/v1beta1",
        "PodMetrics",
        &METRICS_V1BETA1_POD_METRICS,
    ),
    ("v1", "Namespace", &CORE_V1_NAMESPACE),
    ("v1", "ConfigMap", &CORE_V1_CONFIG_MAP),
    ("v1", "Secret", &CORE_V1_SECRET),
    ("v1", "ServiceAccount", &CORE_V1_SERVICE_ACCOUNT),
    ("v1", "Pod", &CORE_V1_POD),
    ("v1", "PodTemplate", &CORE_V1_POD_TEMPLATE),
    ("v1", "Service", &CORE_V1_SERVICE),
    ("v1", "Event", &CORE_V1_EVENT),
    ("v1", "Endpoints", &CORE_V1_ENDPOINTS),
    ("v1", "ResourceQuota", &CORE_V1_RESOURCE_QUOTA),
    ("v1", "LimitRange", &CORE_V1_LIMIT_RANGE),
    (
        "v1",
        "PersistentVolumeClaim",
        &CORE_V1_PERSISTENT_VOLUME_CLAIM,
    ),
    (
        "v1",
        "ReplicationController",
        &CORE_V1_REPLICATION_CONTROLLER,
    ),
    ("v1", "Binding", &CORE_V1_BINDING),
    ("node.k8s.io/v1", "RuntimeClass", &NODE_V1_RUNTIME_CLASS),
    ("v1", "PersistentVolume", &CORE_V1_PERSISTENT_VOLUME),
    (
        "storage.k8s.io/v1",
        "StorageClass",
        &STORAGE_V1_STORAGE_CLASS,
    ),
    (
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &DISCOVERY_V1_ENDPOINT_SLICE,
    ),
    ("apps/v1", "Deployment", &APPS_V1_DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &APPS_V1_REPLICA_SET),
    ("apps/v1", "StatefulSet", &APPS_V1_STATEFUL_SET),
    ("apps/v1", "DaemonSet", &APPS_V1_DAEMON_SET),
    (
        "apps/v1",
        "ControllerRevision",
        &APPS_V1_CONTROLLER_REVISION,
    ),
    ("batch/v1", "Job", &BATCH_V1_JOB),
    ("batch/v1", "CronJob", &BATCH_V1_CRON_JOB),
    ("policy/v1", "Eviction", &POLICY_V1_EVICTION),
    (
        "policy/v1",
        "PodDisruptionBudget",
        &POLICY_V1_POD_DISRUPTION_BUDGET,
    ),
    ("coordination.k8s.io/v1", "Lease", &COORDINATION_V1_LEASE),
    ("rbac.authorization.k8s.io/v1", "Role", &RBAC_V1_ROLE),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &RBAC_V1_ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &RBAC_V1_CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &RBAC_V1_CLUSTER_ROLE_BINDING,
    ),
    ("networking.k8s.io/v1", "Ingress", &NETWORKING_V1_INGRESS),
    (
        "networking.k8s.io/v1",
        "IngressClass",
        &NETWORKING_V1_INGRESS_CLASS,
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &NETWORKING_V1_NETWORK_POLICY,
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &SCHEDULING_V1_PRIORITY_CLASS,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        &AUTHENTICATION_V1_TOKEN_REQUEST,
    ),
    ("autoscaling/v1", "Scale", &AUTOSCALING_V1_SCALE),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        &AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        &AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER,
    ),
    ("*", "DeleteOptions", &META_V1_DELETE_OPTIONS),
    ("v1", "Node", &CORE_V1_NODE),
    ("v1", "Status", &META_V1_STATUS),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &AUTHORIZATION_V1_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        &AUTHORIZATION_V1_LOCAL_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &AUTHORIZATION_V1_SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &AUTHORIZATION_V1_SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenReview",
        &AUTHENTICATION_V1_TOKEN_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &AUTHENTICATION_V1_SELF_SUBJECT_REVIEW,
    ),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST,
    ),
    ("events.k8s.io/v1", "Event", &EVENTS_V1_EVENT),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        &ADMISSIONREGISTRATION_V1_VALIDATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        &ADMISSIONREGISTRATION_V1_MUTATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        &ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        &ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_BINDING,
    ),
    (
        "meta.k8s.io/v1",
        "PartialObjectMetadata",
        &META_V1_PARTIAL_OBJECT_METADATA,
    ),
];

// apidiscovery.k8s.io/v2 and v2beta1 (aggregated discovery), added by hand: tags from
// staging/src/k8s.io/api/apidiscovery/v2/generated.proto (v2beta1 has the same messages and
// tags), JSON names and omitempty from the Go types. Served as `APIGroupDiscoveryList` (a list
// of `APIGroupDiscovery`, see `LIST_KINDS`).

pub(super) static META_V1_GROUP_VERSION_KIND: Msg = Msg {
    name: "k8s.io.apimachinery.pkg.apis.meta.v1.GroupVersionKind",
    fields: &[
        f(1, "group", Str, Value, false),
        f(2, "version", Str, Value, false),
        f(3, "kind", Str, Value, false),
    ],
};

pub(super) static APIDISCOVERY_V2_API_GROUP_DISCOVERY: Msg = Msg {
    name: "k8s.io.api.apidiscovery.v2.APIGroupDiscovery",
    fields: &[
        f(1, "metadata", Msg(&META_V1_OBJECT_META), Value, true),
        f(
            2,
            "versions",
            Msg(&APIDISCOVERY_V2_API_VERSION_DISCOVERY),
            Repeated,
            true,
        ),
    ],
};

pub(super) static APIDISCOVERY_V2_API_VERSION_DISCOVERY: Msg = Msg {
    name: "k8s.io.api.apidiscovery.v2.APIVersionDiscovery",
    fields: &[
        f(1, "version", Str, Value, false),
        f(
            2,
            "resources",
            Msg(&APIDISCOVERY_V2_API_RESOURCE_DISCOVERY),
            Repeated,
            true,
        ),
        f(3, "freshness", Str, Value, true),
    ],
};

pub(super) static APIDISCOVERY_V2_API_RESOURCE_DISCOVERY: Msg = Msg {
    name: "k8s.io.api.apidiscovery.v2.APIResourceDiscovery",
    fields: &[
        f(1, "resource", Str, Value, false),
        f(
            2,
            "responseKind",
            Msg(&META_V1_GROUP_VERSION_KIND),
            Ptr,
            false,
        ),
        f(3, "scope", Str, Value, false),
        f(4, "singularResource", Str, Value, false),
        f(5, "verbs", Str, Repeated, false),
        f(6, "shortNames", Str, Repeated, true),
        f(7, "categories", Str, Repeated, true),
        f(
            8,
            "subresources",
            Msg(&APIDISCOVERY_V2_API_SUBRESOURCE_DISCOVERY),
            Repeated,
            true,
        ),
    ],
};

pub(super) static APIDISCOVERY_V2_API_SUBRESOURCE_DISCOVERY: Msg = Msg {
    name: "k8s.io.api.apidiscovery.v2.APISubresourceDiscovery",
    fields: &[
        f(1, "subresource", Str, Value, false),
        f(
            2,
            "responseKind",
            Msg(&META_V1_GROUP_VERSION_KIND),
            Ptr,
            true,
        ),
        f(
            3,
            "acceptedTypes",
            Msg(&META_V1_GROUP_VERSION_KIND),
            Repeated,
            true,
        ),
        f(4, "verbs", Str, Repeated, false),
    ],
};

/// Kinds whose `<Kind>List` (`{1: ListMeta metadata, 2: repeated <Kind> items}`)
/// is served.
pub(super) static LIST_KINDS: &[(&str, &str, &Msg)] = &[
    ("daas.io/v1", "Usage", &DAAS_V1_USAGE),
    (
        "metrics.k8s.io/v1beta1",
        "NodeMetrics",
        &METRICS_V1BETA1_NODE_METRICS,
    ),
    (
        "metrics.k8s.io/v1beta1",
        "PodMetrics",
        &METRICS_V1BETA1_POD_METRICS,
    ),
    (
        "apidiscovery.k8s.io/v2",
        "APIGroupDiscovery",
        &APIDISCOVERY_V2_API_GROUP_DISCOVERY,
    ),
    (
        "apidiscovery.k8s.io/v2beta1",
        "APIGroupDiscovery",
        &APIDISCOVERY_V2_API_GROUP_DISCOVERY,
    ),
    ("v1", "Namespace", &CORE_V1_NAMESPACE),
    ("v1", "ConfigMap", &CORE_V1_CONFIG_MAP),
    ("v1", "Secret", &CORE_V1_SECRET),
    ("v1", "ServiceAccount", &CORE_V1_SERVICE_ACCOUNT),
    ("v1", "Pod", &CORE_V1_POD),
    ("v1", "PodTemplate", &CORE_V1_POD_TEMPLATE),
    ("v1", "Service", &CORE_V1_SERVICE),
    ("v1", "Event", &CORE_V1_EVENT),
    ("v1", "Endpoints", &CORE_V1_ENDPOINTS),
    ("v1", "ResourceQuota", &CORE_V1_RESOURCE_QUOTA),
    ("v1", "LimitRange", &CORE_V1_LIMIT_RANGE),
    (
        "v1",
        "PersistentVolumeClaim",
        &CORE_V1_PERSISTENT_VOLUME_CLAIM,
    ),
    (
        "v1",
        "ReplicationController",
        &CORE_V1_REPLICATION_CONTROLLER,
    ),
    ("v1", "Node", &CORE_V1_NODE),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &CERTIFICATES_V1_CERTIFICATE_SIGNING_REQUEST,
    ),
    ("events.k8s.io/v1", "Event", &EVENTS_V1_EVENT),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITION,
    ),
    ("node.k8s.io/v1", "RuntimeClass", &NODE_V1_RUNTIME_CLASS),
    ("v1", "PersistentVolume", &CORE_V1_PERSISTENT_VOLUME),
    (
        "storage.k8s.io/v1",
        "StorageClass",
        &STORAGE_V1_STORAGE_CLASS,
    ),
    (
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &DISCOVERY_V1_ENDPOINT_SLICE,
    ),
    ("apps/v1", "Deployment", &APPS_V1_DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &APPS_V1_REPLICA_SET),
    ("apps/v1", "StatefulSet", &APPS_V1_STATEFUL_SET),
    ("apps/v1", "DaemonSet", &APPS_V1_DAEMON_SET),
    (
        "apps/v1",
        "ControllerRevision",
        &APPS_V1_CONTROLLER_REVISION,
    ),
    ("batch/v1", "Job", &BATCH_V1_JOB),
    ("batch/v1", "CronJob", &BATCH_V1_CRON_JOB),
    (
        "policy/v1",
        "PodDisruptionBudget",
        &POLICY_V1_POD_DISRUPTION_BUDGET,
    ),
    ("coordination.k8s.io/v1", "Lease", &COORDINATION_V1_LEASE),
    ("rbac.authorization.k8s.io/v1", "Role", &RBAC_V1_ROLE),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &RBAC_V1_ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &RBAC_V1_CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &RBAC_V1_CLUSTER_ROLE_BINDING,
    ),
    ("networking.k8s.io/v1", "Ingress", &NETWORKING_V1_INGRESS),
    (
        "networking.k8s.io/v1",
        "IngressClass",
        &NETWORKING_V1_INGRESS_CLASS,
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &NETWORKING_V1_NETWORK_POLICY,
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &SCHEDULING_V1_PRIORITY_CLASS,
    ),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        &AUTOSCALING_V1_HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        &AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        &ADMISSIONREGISTRATION_V1_VALIDATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        &ADMISSIONREGISTRATION_V1_MUTATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        &ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        &ADMISSIONREGISTRATION_V1_VALIDATING_ADMISSION_POLICY_BINDING,
    ),
    (
        "meta.k8s.io/v1",
        "PartialObjectMetadata",
        &META_V1_PARTIAL_OBJECT_METADATA,
    ),
];
