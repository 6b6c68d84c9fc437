//! Integration tests for airlock-scan: the labelled corpus (recall and
//! precision per rule), golden reports, structured readers, git history,
//! risk levels, baselines and exit codes.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod corpus;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use airlock_scan::cli::{OutputFormat, ScanArgs, run};
use airlock_scan::{Risk, ScanError, Scanner};

fn scanner() -> Scanner {
    Scanner::new().unwrap()
}

#[derive(Default, Clone, Copy)]
struct Score {
    tp: usize,
    fn_: usize,
    fp: usize,
}

#[test]
fn corpus_recall_and_precision_per_rule() {
    let s = scanner();
    let mut rng = corpus::Rng::new(0x5eed_a110_c0de_u64);
    let ids = airlock_scan::testing::rule_ids();
    // every rule has a generator
    for id in &ids {
        assert!(
            corpus::TEMPLATES.iter().any(|(r, _, _)| r == id),
            "rule {id} has no corpus generator"
        );
    }
    let mut scores: BTreeMap<&str, Score> = ids.iter().map(|id| (*id, Score::default())).collect();
    let mut misses = Vec::new();
    let mut false_pos = Vec::new();
    let samples = corpus::positives(4, &mut rng);
    let decoys = corpus::decoys(&mut rng);
    let n_pos = samples.len();
    for sample in samples.iter().chain(decoys.iter()) {
        let found = s.scan_bytes(Path::new(&sample.file), sample.content.as_bytes());
        if let Some(rule) = sample.expect {
            if found.iter().any(|f| f.rule_id == rule) {
                scores.get_mut(rule).unwrap().tp += 1;
            } else {
                scores.get_mut(rule).unwrap().fn_ += 1;
                misses.push(format!("{rule} in {}: got {:?}\n{}", sample.file, found.iter().map(|f| f.rule_id).collect::<Vec<_>>(), sample.content));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &found {
            if Some(f.rule_id) != sample.expect && seen.insert(f.rule_id) {
                scores.get_mut(f.rule_id).unwrap().fp += 1;
                false_pos.push(format!("{} ({}) in {} [{}]: expected {:?}", f.rule_id, f.preview, sample.file, f.line, sample.expect));
            }
        }
    }
    let mut table = String::new();
    table.push_str(&format!("{:<32} {:>4} {:>4} {:>4} {:>7} {:>7}\n", "rule", "tp", "fn", "fp", "recall", "prec"));
    let (mut tp, mut fn_, mut fp) = (0, 0, 0);
    for (id, sc) in &scores {
        let recall = sc.tp as f64 / (sc.tp + sc.fn_).max(1) as f64;
        let prec = sc.tp as f64 / (sc.tp + sc.fp).max(1) as f64;
        table.push_str(&format!("{id:<32} {:>4} {:>4} {:>4} {recall:>7.3} {prec:>7.3}\n", sc.tp, sc.fn_, sc.fp));
        tp += sc.tp;
        fn_ += sc.fn_;
        fp += sc.fp;
    }
    let recall = tp as f64 / (tp + fn_) as f64;
    let precision = tp as f64 / (tp + fp) as f64;
    let f1 = 2.0 * recall * precision / (recall + precision);
    table.push_str(&format!(
        "\n{} rules, {n_pos} positive files, {} decoy files: recall {recall:.4}, precision {precision:.4}, F1 {f1:.4}\n",
        scores.len(),
        decoys.len()
    ));
    std::io::stdout().write_all(table.as_bytes()).unwrap();
    for m in misses.iter().take(15) {
        println!("MISS {m}");
    }
    for m in false_pos.iter().take(30) {
        println!("FALSE POSITIVE {m}");
    }
    assert!(misses.is_empty(), "{} misses (first shown above)", misses.len());
    assert!(f1 >= 0.95, "F1 {f1} below 0.95");
    let decoy_fp = false_pos.iter().filter(|m| m.ends_with("expected None")).count();
    assert_eq!(decoy_fp, 0, "decoys produced findings (see above)");
}
