//! A bounded load loop on loopback: how many requests per second the emulator answers.
//! Bounded in count and time; it only asserts a floor far below what it measures.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_on_loopback() {
    let world = WORLD.replace("[settings]\n", "[settings]\nthrottle = { enabled = false }\n");
    let env = start_world(&world).await;
    let url = env.url(&format!("{}?api-version=2026-08-01", cluster_path(PROD, "rg-aks", "aks-prod-1")));
    const WORKERS: usize = 8;
    const PER_WORKER: usize = 250;
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let client = env.client.clone();
        let url = url.clone();
        let token = env.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            while done < PER_WORKER && Instant::now() < deadline {
                let response = client.get(&url).bearer_auth(&token).send().await.expect("request");
                assert_eq!(response.status(), StatusCode::OK);
                let _ = response.bytes().await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = total as f64 / elapsed;
    eprintln!(
        "throughput: {total} GET managedCluster requests in {elapsed:.2}s = {rate:.0} requests/s (8 connections, TLS, keep-alive)"
    );
    assert_eq!(env.emulator.ledger().count("GET", "ManagedClusters_Get") as usize, total);
    assert!(rate > 50.0, "{rate:.0} requests/s");
}
