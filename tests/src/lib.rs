//! Integration and compile-fail tests for scopegate live under `tests/`.
