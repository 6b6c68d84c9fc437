//! Scrubber throughput: MB/s over 1 MiB of JSON-ish text with 10 secrets known, with
//! no secret present (the common case) and with a few secrets in it; the same text
//! with a JSON `\u0026` and an HTML `&amp;` in every record (the decoding views work
//! around each escape); and 1 MiB of OpenAI-style server-sent events read as an event
//! stream.
#![allow(missing_docs)]

use airlock_engine::scrub::{BodyKind, Scrubber};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn secrets() -> Vec<(String, Vec<u8>)> {
    (0..10)
        .map(|i| {
            (
                format!("secret{i}"),
                format!("sk_live_{i}_4eC39HqLyjWDarjtT1zdp7dc{i:04}").into_bytes(),
            )
        })
        .collect()
}

/// `record(1)`, `record(2)`, … each appending to the data, until it holds 1 MiB.
fn records(mut record: impl FnMut(u64, &mut Vec<u8>)) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 << 20);
    let mut i = 0u64;
    while data.len() < (1 << 20) {
        i += 1;
        record(i, &mut data);
    }
    data
}

fn corpus(with_secrets: bool, secrets: &[(String, Vec<u8>)]) -> Vec<u8> {
    records(|i, data| {
        data.extend_from_slice(
            format!(r#"{{"id":"ch_{i:016x}","amount":{},"currency":"usd","description":"Order {i} for customer"}},"#, i * 37 % 10_000)
                .as_bytes(),
        );
        if with_secrets && i.is_multiple_of(1000) {
            data.extend_from_slice(&secrets[(i / 1000) as usize % secrets.len()].1);
        }
    })
}

/// Records whose text carries escapes (Go's `\u0026`, HTML's `&amp;`), no secret.
fn escaped_corpus() -> Vec<u8> {
    records(|i, data| {
        data.extend_from_slice(
            format!(r#"{{"id":"ch_{i:016x}","url":"/v1/x?a={i}\u0026b=2","html":"<b>Tom &amp; Jerry</b> {i}"}},"#)
                .as_bytes(),
        );
    })
}

/// OpenAI chat-completion chunks of a few words each, no secret.
fn event_corpus() -> Vec<u8> {
    records(|i, data| {
        data.extend_from_slice(
            format!("data: {{\"id\":\"chatcmpl-{i}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i} and more,\"}},\"finish_reason\":null}}]}}\n\n")
                .as_bytes(),
        );
    })
}

fn bench(c: &mut Criterion) {
    let secrets = secrets();
    let scrubber =
        Scrubber::new(secrets.iter().map(|(n, v)| (n.as_str(), v.as_slice()))).expect("scrubber");
    let mut g = c.benchmark_group("scrub");
    for (label, with) in [("clean", false), ("with_secrets", true)] {
        let data = corpus(with, &secrets);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(format!("one_shot_10_secrets_{label}"), |b| {
            b.iter(|| scrubber.scrub(&data))
        });
        g.bench_function(format!("stream_16k_chunks_10_secrets_{label}"), |b| {
            b.iter(|| {
                let mut st = scrubber.stream();
                let mut n = 0;
                for chunk in data.chunks(16 * 1024) {
                    n += st.push(chunk).len();
                }
                n + st.finish().len()
            })
        });
    }
    let data = escaped_corpus();
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("one_shot_10_secrets_clean_with_escapes", |b| {
        b.iter(|| scrubber.scrub(&data))
    });
    let data = event_corpus();
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("event_stream_16k_chunks_10_secrets_clean", |b| {
        b.iter(|| {
            let mut st = scrubber.stream_body(BodyKind::EventStream);
            let mut n = 0;
            for chunk in data.chunks(16 * 1024) {
                n += st.push(chunk).len();
            }
            n + st.finish().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
