//! Time of one decision against the number of rules in the capability: the
//! shapes of bench/scale (k - 1 allow rules `GET /v1/rNNNN/**` that do not match,
//! then `GET /v1/items` that does, and a deny rule), for 10, 1,000 and 100,000
//! rules. Ideally flat (issue 16: 1,000 rules within 1.2× of 10).
#![allow(missing_docs)]

use airlock_policy::{RuleSet, normalize};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn rules(k: usize) -> RuleSet {
    let mut allow: Vec<String> = (0..k - 1).map(|j| format!("GET /v1/r{j:05}/**")).collect();
    allow.push("GET /v1/items".into());
    RuleSet::compile(&allow, &["* /v1/admin/**".into()], &[]).expect("rules")
}

fn bench(c: &mut Criterion) {
    let target = normalize("/v1/items?limit=3").expect("target");
    let mut g = c.benchmark_group("decide");
    for k in [10, 1_000, 100_000] {
        let rs = rules(k);
        assert!(rs.decide("GET", &target).is_allowed());
        g.bench_with_input(BenchmarkId::from_parameter(k), &rs, |b, rs| {
            b.iter(|| rs.decide("GET", &target))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
