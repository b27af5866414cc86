//! The order the YAML encoder kustomize uses writes mapping keys in: "natural" order, where
//! letters sort after other characters and runs of digits compare as numbers (`key2` before
//! `key10`).

use std::cmp::Ordering;

/// The encoder's key order: letters after other characters, digit runs compared as numbers.
///
/// The encoder asks "is `a` less than `b`?" and decides it at the first character the keys
/// differ in, by a test that holds one way round exactly (or by their lengths when one key
/// begins the other), so one pass gives the three-way order.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return natural_order_chars(a.as_bytes(), b.as_bytes(), |c| c as char);
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    natural_order_chars(&ar, &br, |c| c)
}

fn natural_order_chars<T: Copy + Ord>(ar: &[T], br: &[T], ch: impl Fn(T) -> char) -> Ordering {
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ch(ar[i]).is_alphabetic(), ch(br[i]).is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ch(ar[i]) == '0' || ch(br[i]) == '0' {
            for j in (0..i).rev() {
                if !ch(ar[j]).is_ascii_digit() {
                    break;
                }
                if ch(ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let digits = |s: &[T], n: &mut i64| {
            let mut k = i;
            while k < s.len() && ch(s[k]).is_ascii_digit() {
                *n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(ch(s[k]) as u8 - b'0'));
                k += 1;
            }
            k
        };
        let ai = digits(ar, &mut an);
        let bi = digits(br, &mut bn);
        return an.cmp(&bn).then(ai.cmp(&bi)).then(ar[i].cmp(&br[i]));
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_as_numbers_and_letters_sort_last() {
        let mut keys = vec![
            "key10", "key2", "B", "a", "_x", "10", "9", "a-b", "a09", "a9",
        ];
        keys.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            keys,
            [
                "_x", "9", "10", "B", "a", "a-b", "a9", "a09", "key2", "key10"
            ]
        );
    }
}
