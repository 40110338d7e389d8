//! Gathering cluster data from every nsqlookupd and nsqd, and fanning actions out to them (Go's
//! `internal/clusterinfo/data.go`).
//!
//! Every upstream is asked concurrently, each request bounded by the client's timeouts. A call that reached
//! some upstreams but not others returns its data with the errors ([`Gathered`]); the HTTP layer turns them
//! into Go's `WARNING: ...` message. When no upstream answered, the call fails with Go's
//! `Failed to query any nsqlookupd: ...` text, which becomes a 502.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Deserialize;

use crate::http_client::HttpClient;
use crate::types::{
    version_triple, ChannelStats, LookupdProducer, Producer, ProducerTopic, TopicStats,
};

/// A value with the errors of the upstreams that did not answer.
#[derive(Debug)]
pub struct Gathered<T> {
    /// What the upstreams that answered said.
    pub value: T,
    /// One line per failed upstream request.
    pub errors: Vec<String>,
}

/// A gathered value, or the reason nothing could be gathered.
pub type Outcome<T> = Result<Gathered<T>, String>;

/// Topic rows per node and channel sums keyed by channel name (or `topic:channel` when no topic was chosen).
pub type NsqdStats = (Vec<TopicStats>, BTreeMap<String, ChannelStats>);

/// Escapes a query value as Go's `url.QueryEscape` does.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Runs `f` for every address concurrently and returns the results in address order.
async fn fan_out<T, F, Fut>(addrs: &[String], f: F) -> Vec<(String, Result<T, String>)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = addrs
        .iter()
        .map(|a| (a.clone(), tokio::spawn(f(a.clone()))))
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (addr, handle) in handles {
        let result = handle
            .await
            .unwrap_or_else(|e| Err(format!("request task failed: {e}")));
        out.push((addr, result));
    }
    out
}

/// Splits results into successes and errors; all failed (including none asked) is Go's total failure.
fn split<T>(results: Vec<(String, Result<T, String>)>, what: &str) -> Outcome<Vec<(String, T)>> {
    let total = results.len();
    let mut value = Vec::new();
    let mut errors = Vec::new();
    for (addr, r) in results {
        match r {
            Ok(v) => value.push((addr, v)),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == total {
        return Err(format!("Failed to query any {what}: {}", errors.join("\n")));
    }
    Ok(Gathered { value, errors })
}

/// What nsqd's `/info` says about itself.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct NsqdInfo {
    version: String,
    broadcast_address: String,
    hostname: String,
    http_port: i64,
    tcp_port: i64,
}

/// The part of nsqd's `/stats?format=json` nsqadmin reads.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct NsqdStatsBody {
    #[serde(deserialize_with = "crate::types::nullable")]
    topics: Vec<TopicStats>,
}

/// Topic names from nsqd's stats.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct NsqdTopicNames {
    #[serde(deserialize_with = "crate::types::nullable")]
    topics: Vec<NamedTopic>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct NamedTopic {
    topic_name: String,
}

/// The cluster as seen through one HTTP client.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The client every request goes through.
    pub client: HttpClient,
}

impl Cluster {
    /// The union of every lookupd's `/topics`, sorted.
    pub async fn lookupd_topics(&self, lookupds: &[String]) -> Outcome<Vec<String>> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Body {
            #[serde(deserialize_with = "crate::types::nullable")]
            topics: Vec<String>,
        }
        let client = self.client.clone();
        let results = fan_out(lookupds, move |a| {
            let client = client.clone();
            async move {
                client
                    .get_json::<Body>(&format!("http://{a}/topics"))
                    .await
                    .map(|b| b.topics)
            }
        })
        .await;
        let g = split(results, "nsqlookupd")?;
        let mut topics: Vec<String> = g.value.into_iter().flat_map(|(_, t)| t).collect();
        topics.sort();
        topics.dedup();
        Ok(Gathered {
            value: topics,
            errors: g.errors,
        })
    }

    /// The union of every lookupd's `/channels?topic=`, sorted.
    pub async fn lookupd_topic_channels(
        &self,
        topic: &str,
        lookupds: &[String],
    ) -> Outcome<Vec<String>> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Body {
            #[serde(deserialize_with = "crate::types::nullable")]
            channels: Vec<String>,
        }
        let client = self.client.clone();
        let qs = query_escape(topic);
        let results = fan_out(lookupds, move |a| {
            let client = client.clone();
            let url = format!("http://{a}/channels?topic={qs}");
            async move { client.get_json::<Body>(&url).await.map(|b| b.channels) }
        })
        .await;
        let g = split(results, "nsqlookupd")?;
        let mut channels: Vec<String> = g.value.into_iter().flat_map(|(_, c)| c).collect();
        channels.sort();
        channels.dedup();
        Ok(Gathered {
            value: channels,
            errors: g.errors,
        })
    }

    /// Every nsqd registered with any lookupd (`/nodes`), merged by TCP address, sorted by hostname.
    pub async fn lookupd_producers(&self, lookupds: &[String]) -> Outcome<Vec<Producer>> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Body {
            #[serde(deserialize_with = "crate::types::nullable")]
            producers: Vec<LookupdProducer>,
        }
        let client = self.client.clone();
        let results = fan_out(lookupds, move |a| {
            let client = client.clone();
            async move {
                client
                    .get_json::<Body>(&format!("http://{a}/nodes"))
                    .await
                    .map(|b| b.producers)
            }
        })
        .await;
        let g = split(results, "nsqlookupd")?;
        let mut producers: Vec<Producer> = Vec::new();
        for (lookupd, list) in g.value {
            for raw in list {
                let p = Producer::from(raw);
                let remote = if p.remote_address.is_empty() {
                    "N/A".to_owned()
                } else {
                    p.remote_address.clone()
                };
                let key = p.tcp_address();
                let i = match producers.iter().position(|q| q.tcp_address() == key) {
                    Some(i) => i,
                    None => {
                        producers.push(p);
                        producers.len() - 1
                    }
                };
                producers[i]
                    .remote_addresses
                    .get_or_insert_with(Vec::new)
                    .push(format!("{lookupd}/{remote}"));
            }
        }
        mark_out_of_date(&mut producers);
        sort_by_host(&mut producers);
        Ok(Gathered {
            value: producers,
            errors: g.errors,
        })
    }

    /// The nsqd that produce `topic` according to any lookupd (`/lookup`), merged by HTTP address.
    pub async fn lookupd_topic_producers(
        &self,
        topic: &str,
        lookupds: &[String],
    ) -> Outcome<Vec<Producer>> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Body {
            #[serde(deserialize_with = "crate::types::nullable")]
            producers: Vec<LookupdProducer>,
        }
        let client = self.client.clone();
        let qs = query_escape(topic);
        let results = fan_out(lookupds, move |a| {
            let client = client.clone();
            let url = format!("http://{a}/lookup?topic={qs}");
            async move { client.get_json::<Body>(&url).await.map(|b| b.producers) }
        })
        .await;
        let g = split(results, "nsqlookupd")?;
        let mut producers: Vec<Producer> = Vec::new();
        for (_, list) in g.value {
            for raw in list {
                let p = Producer::from(raw);
                if !producers
                    .iter()
                    .any(|q| q.http_address() == p.http_address())
                {
                    producers.push(p);
                }
            }
        }
        Ok(Gathered {
            value: producers,
            errors: g.errors,
        })
    }

    /// Every given nsqd, described by its `/info` and `/stats`.
    pub async fn nsqd_producers(&self, nsqds: &[String]) -> Outcome<Vec<Producer>> {
        let client = self.client.clone();
        let results = fan_out(nsqds, move |a| {
            let client = client.clone();
            async move {
                let info: NsqdInfo = client.get_json(&format!("http://{a}/info")).await?;
                let stats: NsqdTopicNames = client
                    .get_json(&format!("http://{a}/stats?format=json"))
                    .await?;
                Ok(producer_from_info(info, &stats))
            }
        })
        .await;
        let g = split(results, "nsqd")?;
        Ok(Gathered {
            value: g.value.into_iter().map(|(_, p)| p).collect(),
            errors: g.errors,
        })
    }

    /// The given nsqd that have `topic`.
    pub async fn nsqd_topic_producers(
        &self,
        topic: &str,
        nsqds: &[String],
    ) -> Outcome<Vec<Producer>> {
        let client = self.client.clone();
        let topic = topic.to_owned();
        let results = fan_out(nsqds, move |a| {
            let client = client.clone();
            let topic = topic.clone();
            async move {
                let stats: NsqdTopicNames = client
                    .get_json(&format!("http://{a}/stats?format=json"))
                    .await?;
                if !stats.topics.iter().any(|t| t.topic_name == topic) {
                    return Ok(None);
                }
                let mut info: NsqdInfo = client.get_json(&format!("http://{a}/info")).await?;
                if info.broadcast_address.is_empty() {
                    if let Some((host, port)) = a.rsplit_once(':') {
                        info.broadcast_address = host.to_owned();
                        info.http_port = port.parse().unwrap_or(0);
                    }
                }
                if info.hostname.is_empty() {
                    info.hostname = a.rsplit_once(':').map_or(a.clone(), |(h, _)| h.to_owned());
                }
                Ok(Some(producer_from_info(info, &stats)))
            }
        })
        .await;
        let g = split(results, "nsqd")?;
        Ok(Gathered {
            value: g.value.into_iter().filter_map(|(_, p)| p).collect(),
            errors: g.errors,
        })
    }

    /// Topic names of the given nsqd, sorted.
    pub async fn nsqd_topics(&self, nsqds: &[String]) -> Outcome<Vec<String>> {
        let client = self.client.clone();
        let results = fan_out(nsqds, move |a| {
            let client = client.clone();
            async move {
                client
                    .get_json::<NsqdTopicNames>(&format!("http://{a}/stats?format=json"))
                    .await
            }
        })
        .await;
        let g = split(results, "nsqd")?;
        let mut topics: Vec<String> = g
            .value
            .into_iter()
            .flat_map(|(_, s)| s.topics.into_iter().map(|t| t.topic_name))
            .collect();
        topics.sort();
        topics.dedup();
        Ok(Gathered {
            value: topics,
            errors: g.errors,
        })
    }

    /// Producers of `topic` from lookupd when any is configured, else from the nsqd list (Go's
    /// `GetTopicProducers`).
    pub async fn topic_producers(
        &self,
        topic: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Outcome<Vec<Producer>> {
        if lookupds.is_empty() {
            self.nsqd_topic_producers(topic, nsqds).await
        } else {
            self.lookupd_topic_producers(topic, lookupds).await
        }
    }

    /// Every producer, from lookupd when any is configured (Go's `GetProducers`).
    pub async fn producers(&self, lookupds: &[String], nsqds: &[String]) -> Outcome<Vec<Producer>> {
        if lookupds.is_empty() {
            self.nsqd_producers(nsqds).await
        } else {
            self.lookupd_producers(lookupds).await
        }
    }

    /// Each producer's `/stats`, tagged with its node, plus channel sums (Go's `GetNSQDStats`).
    pub async fn nsqd_stats(&self, producers: &[Producer], topic: &str) -> Outcome<NsqdStats> {
        let client = self.client.clone();
        let addrs: Vec<String> = producers.iter().map(Producer::http_address).collect();
        let hosts: BTreeMap<String, String> = producers
            .iter()
            .map(|p| (p.http_address(), p.hostname.clone()))
            .collect();
        let suffix = if topic.is_empty() {
            String::new()
        } else {
            format!("&topic={}", query_escape(topic))
        };
        let results = fan_out(&addrs, move |a| {
            let client = client.clone();
            let url = format!("http://{a}/stats?format=json{suffix}");
            async move { client.get_json::<NsqdStatsBody>(&url).await }
        })
        .await;
        let g = split(results, "nsqd")?;
        let now = now_secs();
        let mut topics = Vec::new();
        let mut channels: BTreeMap<String, ChannelStats> = BTreeMap::new();
        for (addr, body) in g.value {
            let hostname = hosts.get(&addr).cloned().unwrap_or_default();
            for mut t in body.topics {
                if !topic.is_empty() && t.topic_name != topic {
                    continue;
                }
                t.tag(&addr, &hostname, now);
                for c in t.channels.iter().flatten() {
                    let key = if topic.is_empty() {
                        format!("{}:{}", t.topic_name, c.channel_name)
                    } else {
                        c.channel_name.clone()
                    };
                    channels
                        .entry(key)
                        .or_insert_with(|| ChannelStats::sum_of(&t.topic_name, &c.channel_name))
                        .add(c.clone());
                }
                topics.push(t);
            }
        }
        topics.sort_by(|x, y| (&x.hostname, &x.node).cmp(&(&y.hostname, &y.node)));
        Ok(Gathered {
            value: (topics, channels),
            errors: g.errors,
        })
    }

    /// POSTs `path?qs` to every address; the errors of those that failed.
    async fn post_all(&self, addrs: &[String], path: &str, qs: &str) -> Vec<String> {
        let client = self.client.clone();
        let tail = format!("{path}?{qs}");
        fan_out(addrs, move |a| {
            let client = client.clone();
            let url = format!("http://{a}/{tail}");
            async move { client.post(&url).await }
        })
        .await
        .into_iter()
        .filter_map(|(_, r)| r.err())
        .collect()
    }

    /// POSTs to every producer's HTTP address.
    async fn post_producers(&self, producers: &[Producer], path: &str, qs: &str) -> Vec<String> {
        let addrs: Vec<String> = producers.iter().map(Producer::http_address).collect();
        self.post_all(&addrs, path, qs).await
    }

    /// Creates a topic (and a channel) in every lookupd, and the channel on the topic's producers (Go's
    /// `CreateTopicChannel`). Every failure is partial.
    pub async fn create_topic_channel(
        &self,
        topic: &str,
        channel: &str,
        lookupds: &[String],
    ) -> Vec<String> {
        let qs = format!("topic={}", query_escape(topic));
        let mut errors = self.post_all(lookupds, "topic/create", &qs).await;
        if !channel.is_empty() {
            let qs = format!(
                "topic={}&channel={}",
                query_escape(topic),
                query_escape(channel)
            );
            errors.extend(self.post_all(lookupds, "channel/create", &qs).await);
            match self.lookupd_topic_producers(topic, lookupds).await {
                Ok(g) => {
                    errors.extend(g.errors);
                    errors.extend(self.post_producers(&g.value, "channel/create", &qs).await);
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Deletes a topic from every lookupd and every producer (Go's `DeleteTopic`).
    pub async fn delete_topic(
        &self,
        topic: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Vec<String>, String> {
        let g = self.topic_producers(topic, lookupds, nsqds).await?;
        let mut errors = g.errors;
        let qs = format!("topic={}", query_escape(topic));
        errors.extend(self.post_all(lookupds, "topic/delete", &qs).await);
        errors.extend(self.post_producers(&g.value, "topic/delete", &qs).await);
        Ok(errors)
    }

    /// Deletes a channel from every lookupd and every producer (Go's `DeleteChannel`).
    pub async fn delete_channel(
        &self,
        topic: &str,
        channel: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Vec<String>, String> {
        let g = self.topic_producers(topic, lookupds, nsqds).await?;
        let mut errors = g.errors;
        let qs = format!(
            "topic={}&channel={}",
            query_escape(topic),
            query_escape(channel)
        );
        errors.extend(self.post_all(lookupds, "channel/delete", &qs).await);
        errors.extend(self.post_producers(&g.value, "channel/delete", &qs).await);
        Ok(errors)
    }

    /// POSTs `path` (`topic/pause`, `channel/empty`, ...) to every producer of `topic` (Go's `actionHelper`).
    pub async fn producer_action(
        &self,
        topic: &str,
        channel: &str,
        path: &str,
        lookupds: &[String],
        nsqds: &[String],
    ) -> Result<Vec<String>, String> {
        let g = self.topic_producers(topic, lookupds, nsqds).await?;
        let mut errors = g.errors;
        let mut qs = format!("topic={}", query_escape(topic));
        if !channel.is_empty() {
            qs.push_str(&format!("&channel={}", query_escape(channel)));
        }
        errors.extend(self.post_producers(&g.value, path, &qs).await);
        Ok(errors)
    }

    /// Tombstones `node` for `topic` in every lookupd, then deletes the topic on that node (Go's
    /// `TombstoneNodeForTopic`).
    pub async fn tombstone_node_for_topic(
        &self,
        topic: &str,
        node: &str,
        lookupds: &[String],
    ) -> Vec<String> {
        let qs = format!("topic={}&node={}", query_escape(topic), query_escape(node));
        let mut errors = self.post_all(lookupds, "topic/tombstone", &qs).await;
        match self.nsqd_producers(&[node.to_owned()]).await {
            Ok(g) => {
                errors.extend(g.errors);
                let qs = format!("topic={}", query_escape(topic));
                errors.extend(self.post_producers(&g.value, "topic/delete", &qs).await);
            }
            Err(e) => errors.push(e),
        }
        errors
    }
}

/// A producer built from nsqd's `/info` and the topic names of its `/stats`.
fn producer_from_info(info: NsqdInfo, stats: &NsqdTopicNames) -> Producer {
    let topics: Vec<ProducerTopic> = stats
        .topics
        .iter()
        .map(|t| ProducerTopic {
            topic: t.topic_name.clone(),
            tombstoned: false,
        })
        .collect();
    Producer {
        remote_addresses: None,
        remote_address: String::new(),
        hostname: info.hostname,
        broadcast_address: info.broadcast_address,
        tcp_port: info.tcp_port,
        http_port: info.http_port,
        version: info.version,
        topics: (!topics.is_empty()).then_some(topics),
        out_of_date: false,
    }
}

/// Flags producers older than the newest one in the list.
fn mark_out_of_date(producers: &mut [Producer]) {
    let newest = producers
        .iter()
        .map(|p| version_triple(&p.version))
        .max()
        .unwrap_or_default();
    for p in producers {
        p.out_of_date = version_triple(&p.version) < newest;
    }
}

/// Sorts by hostname, then by HTTP address so that the order is stable.
fn sort_by_host(producers: &mut [Producer]) {
    producers.sort_by(|a, b| (&a.hostname, a.http_address()).cmp(&(&b.hostname, b.http_address())));
}

/// Unix seconds now.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_escape_like_go() {
        assert_eq!(query_escape("a b&c#ephemeral"), "a+b%26c%23ephemeral");
        assert_eq!(query_escape("t.1_x-y"), "t.1_x-y");
    }

    #[test]
    fn all_failed_is_total_and_some_failed_is_partial() {
        let r: Vec<(String, Result<u8, String>)> = vec![
            ("a".into(), Err("e1".into())),
            ("b".into(), Err("e2".into())),
        ];
        assert_eq!(
            split(r, "nsqd").unwrap_err(),
            "Failed to query any nsqd: e1\ne2"
        );
        let r: Vec<(String, Result<u8, String>)> =
            vec![("a".into(), Ok(1)), ("b".into(), Err("e2".into()))];
        let g = split(r, "nsqd").unwrap();
        assert_eq!((g.value.len(), g.errors), (1, vec!["e2".to_owned()]));
    }
}
