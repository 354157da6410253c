//! Runnable examples of Sandlink; see the `[[example]]` targets.
