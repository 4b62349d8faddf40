//! Properties of interpolation: it never panics, `$$` always reads back
//! as one `$`, and nesting works to any depth.

use std::collections::BTreeMap;

use berth_compose::interpolate::{interpolate, undefaulted_vars};
use proptest::prelude::*;

fn vars() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("A".to_string(), "a".to_string()),
        ("EMPTY".to_string(), String::new()),
    ])
}

proptest! {
    /// Any text, including broken templates, gives a value or an error.
    #[test]
    fn never_panics(s in "\\PC*") {
        let _ = interpolate(&s, &vars());
        let _ = undefaulted_vars(&s);
    }

    /// Template-heavy text: mostly `$`, braces and operators.
    #[test]
    fn never_panics_on_template_soup(s in "[$:{}?+\\-AB_a ]{0,40}") {
        let _ = interpolate(&s, &vars());
        let _ = undefaulted_vars(&s);
    }

    /// Text with every `$` doubled reads back as the text.
    #[test]
    fn escaped_dollars_round_trip(s in "\\PC*") {
        let escaped = s.replace('$', "$$");
        let got = interpolate(&escaped, &vars()).unwrap();
        prop_assert_eq!(got.value, s);
        prop_assert!(got.unset.is_empty());
    }

    /// `${U1:-${U2:-...${A}...}}` of any depth is A's value; with `:+`
    /// it is the innermost word.
    #[test]
    fn nesting_any_depth(depth in 1usize..40, word in "[a-z ]{0,8}") {
        let mut t = "${A}".to_string();
        for i in 0..depth {
            t = format!("${{UNSET{i}:-{t}}}");
        }
        prop_assert_eq!(interpolate(&t, &vars()).unwrap().value, "a");
        let mut t = word.clone();
        for _ in 0..depth {
            t = format!("${{A:+{t}}}");
        }
        prop_assert_eq!(interpolate(&t, &vars()).unwrap().value, word);
    }

    /// Text without `$` is unchanged.
    #[test]
    fn plain_text_is_unchanged(s in "[^$]*") {
        prop_assert_eq!(interpolate(&s, &vars()).unwrap().value, s);
    }
}
