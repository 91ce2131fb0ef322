//! The names of a dataset's classes, indexed by label: Fashion-MNIST's by default, or a list given with
//! `--class-names a,b,...` or in a `class_names.txt` (one name a line) beside the IDX files, for other
//! datasets in the same format (MNIST digits, Kuzushiji-MNIST). They travel in the checkpoint and label
//! every figure and report. Tested below and by tests/class_names.rs.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{CLASS_NAMES, NUM_CLASSES};

/// The file beside the IDX files that names the classes.
pub const CLASS_NAMES_FILE: &str = "class_names.txt";
/// The longest class name accepted (a figure's label has room for about this many characters).
const MAX_NAME: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ClassNames(Vec<String>);

impl Default for ClassNames {
    fn default() -> Self {
        Self::fashion()
    }
}

impl TryFrom<Vec<String>> for ClassNames {
    type Error = anyhow::Error;
    fn try_from(names: Vec<String>) -> Result<Self> {
        if names.len() != NUM_CLASSES {
            bail!(
                "{} class names given, the data has {NUM_CLASSES} classes",
                names.len()
            );
        }
        for n in &names {
            if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
                bail!("class name {n:?}: 1 to {MAX_NAME} printable characters");
            }
        }
        Ok(Self(names))
    }
}

impl From<ClassNames> for Vec<String> {
    fn from(n: ClassNames) -> Self {
        n.0
    }
}

impl ClassNames {
    /// The tutorial's names.
    pub fn fashion() -> Self {
        Self(CLASS_NAMES.iter().map(|s| s.to_string()).collect())
    }

    /// A comma-separated list, as `--class-names` takes it (spaces around names trimmed).
    pub fn from_list(list: &str) -> Result<Self> {
        Self::try_from(
            list.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>(),
        )
    }

    /// The names in `dir`'s `class_names.txt`, one a line (blank lines ignored), if that file exists.
    pub fn beside(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(CLASS_NAMES_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = crate::files::read_regular(&path, 64 * 1024, "a list of class names")
            .with_context(|| path.display().to_string())?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        Self::try_from(names)
            .map(Some)
            .with_context(|| path.display().to_string())
    }

    /// The name of class `label`.
    pub fn get(&self, label: usize) -> &str {
        &self.0[label]
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn as_strs(&self) -> Vec<&str> {
        self.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_files_give_ten_names() {
        let digits = ClassNames::from_list("0, 1,2,3,4,5,6,7,8,9").unwrap();
        assert_eq!(digits.get(1), "1");
        assert_eq!(ClassNames::default().get(9), "Ankle boot");
        let e = ClassNames::from_list("a,b").unwrap_err().to_string();
        assert!(e.contains("2 class names given"), "{e}");
        assert!(ClassNames::from_list("a,,c,d,e,f,g,h,i,j").is_err());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ClassNames::beside(dir.path()).unwrap(), None);
        let names = "zero\none\n\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n";
        std::fs::write(dir.path().join(CLASS_NAMES_FILE), names).unwrap();
        let n = ClassNames::beside(dir.path()).unwrap().unwrap();
        assert_eq!(n.get(2), "two");
        std::fs::write(dir.path().join(CLASS_NAMES_FILE), "a\nb\n").unwrap();
        let e = format!("{:#}", ClassNames::beside(dir.path()).unwrap_err());
        assert!(
            e.contains(CLASS_NAMES_FILE) && e.contains("2 class names"),
            "{e}"
        );
    }

    #[test]
    fn names_round_trip_through_json() {
        let n = ClassNames::from_list("a,b,c,d,e,f,g,h,i,j").unwrap();
        let s = serde_json::to_string(&n).unwrap();
        assert_eq!(s, r#"["a","b","c","d","e","f","g","h","i","j"]"#);
        assert_eq!(serde_json::from_str::<ClassNames>(&s).unwrap(), n);
        assert!(serde_json::from_str::<ClassNames>(r#"["a"]"#).is_err());
    }
}
