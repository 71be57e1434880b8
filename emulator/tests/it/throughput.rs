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

/// The Kubernetes API: sequential GETs and PUTs over one connection, then GETs from 8
/// concurrent workers. Bounded; the floor asserted is far below what it measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_throughput() {
    use crate::kube_support::Kube;
    let env = start().await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    let path = "/api/v1/namespaces/default/secrets/load";
    let created = kube
        .post(
            "/api/v1/namespaces/default/secrets",
            &serde_json::json!({"metadata": {"name": "load"}, "stringData": {"n": "0"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    const N: usize = 400;
    let deadline = Instant::now() + Duration::from_secs(20);

    let started = Instant::now();
    let mut gets = 0;
    while gets < N && Instant::now() < deadline {
        assert_eq!(kube.get(path).await.status, StatusCode::OK);
        gets += 1;
    }
    let get_rate = gets as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut current = kube.get(path).await.body;
    let mut puts = 0;
    while puts < N && Instant::now() < deadline {
        current["data"]["n"] = serde_json::json!(base64_of(&puts.to_string()));
        let answer = kube.put(path, &current).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer}");
        current = answer.body;
        puts += 1;
    }
    let put_rate = puts as f64 / started.elapsed().as_secs_f64();

    const WORKERS: usize = 8;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let client = crate::support::client_for(&env.emulator);
        let url = format!("{}{path}", kube.server);
        let token = kube.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            while done < N / 2 && Instant::now() < deadline {
                let response = client.get(&url).bearer_auth(&token).send().await.expect("request");
                assert_eq!(response.status(), StatusCode::OK);
                let _ = response.bytes().await;
                done += 1;
            }
            done
        }));
    }
    let mut parallel = 0;
    for task in tasks {
        parallel += task.await.expect("worker");
    }
    let parallel_rate = parallel as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "kubernetes API throughput: {get_rate:.0} GET/s and {put_rate:.0} PUT/s sequential over one connection; {parallel_rate:.0} GET/s with {WORKERS} connections in parallel"
    );
    assert!(get_rate > 20.0 && put_rate > 20.0 && parallel_rate > 20.0);
    assert_eq!(env.emulator.ledger().count("PUT", "replaceCoreV1NamespacedSecret") as usize, puts);
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
