//! Kubernetes apimachinery-style pure logic over [`serde_json::Value`]:
//!
//! * [`apply`]: server-side apply and managedFields (field sets, ownership, conflicts);
//! * [`patch`]: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//!   Kubernetes strategic merge patch;
//! * [`selector`]: label selectors and field selectors;
//! * [`protobuf`]: decoding of Kubernetes protobuf request bodies
//!   (`application/vnd.kubernetes.protobuf`) into their JSON form;
//! * [`options`]: `DeleteOptions` bodies in JSON or protobuf;
//! * [`duplicates`]: duplicate keys in a raw JSON body (strict field validation).
//! * [`quantity`]: resource quantities ("500m", "1.5Gi") as integer milli-units.
//! * [`singleflight`]: keyed read coalescing that only shares reads started after the caller asked.
//!
//! Nothing in this crate does I/O, and nothing panics on any input.

pub mod apply;
pub mod duplicates;
pub mod options;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod selector;
pub mod singleflight;
pub mod validation;

pub use duplicates::json_duplicate_fields;
pub use options::{decode_delete_options, DeleteOptionsError};
pub use patch::{json_patch, merge_patch, strategic_merge_patch, PatchError};
pub use protobuf::{decode_object, ProtobufError};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
