//! The error accumulator: every problem of a declaration is reported, not just the first.
//!
//! [`Errors`] is either empty or holds at least one error (a [`syn::Error`] carries one or
//! more messages, each with its span, combined with [`syn::Error::combine`] in the order
//! they were found). [`Errors::finish`] turns it into a result, so a caller never has to
//! invent an error for a value that went missing: a step that records no error yields its
//! value, and one that records any yields all of them.

/// Errors found so far, in the order they were found.
pub(crate) struct Errors {
    /// `None` while no error was recorded; otherwise every recorded error, combined.
    all: Option<syn::Error>,
}

impl Errors {
    /// No error yet.
    pub(crate) fn new() -> Self {
        Self { all: None }
    }

    /// Records one more error, after the ones recorded before.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.all {
            Some(all) => all.combine(error),
            None => self.all = Some(error),
        }
    }

    /// Records the error of a failed step and returns `None`, or passes a success through.
    pub(crate) fn check<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `Ok` if nothing was recorded, else every recorded error, combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.all {
            Some(all) => Err(all),
            None => Ok(()),
        }
    }
}

/// Both values, or the errors of both steps (the first step's first).
pub(crate) fn both<A, B>(a: syn::Result<A>, b: syn::Result<B>) -> syn::Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => Err(error),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            Err(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;

    use super::{Errors, both};

    fn error(message: &str) -> syn::Error {
        syn::Error::new(Span::call_site(), message)
    }

    fn messages<T>(result: syn::Result<T>) -> Vec<String> {
        result.err().map(|error| error.into_iter().map(|e| e.to_string()).collect()).unwrap_or_default()
    }

    #[test]
    fn nothing_recorded_finishes_ok() {
        assert!(Errors::new().finish().is_ok());
        let mut errors = Errors::new();
        assert_eq!(errors.check(Ok(7)), Some(7));
        assert!(errors.finish().is_ok());
    }

    #[test]
    fn every_recorded_error_is_finished_in_order() {
        let mut errors = Errors::new();
        errors.push(error("first"));
        assert_eq!(errors.check::<()>(Err(error("second"))), None);
        errors.push(error("third"));
        assert_eq!(messages(errors.finish()), ["first", "second", "third"]);
    }

    #[test]
    fn both_steps_errors_are_combined_first_step_first() {
        assert_eq!(both::<u8, u8>(Ok(1), Ok(2)).ok(), Some((1, 2)));
        assert_eq!(messages(both::<u8, u8>(Err(error("attr")), Ok(2))), ["attr"]);
        assert_eq!(messages(both::<u8, u8>(Ok(1), Err(error("item")))), ["item"]);
        assert_eq!(messages(both::<u8, u8>(Err(error("attr")), Err(error("item")))), ["attr", "item"]);
    }
}
