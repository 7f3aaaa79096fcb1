"""Deployment-wide consistency: versions and schemas, timings, alert selectors, Argo CD, Terraform,
hand-offs between parts, one source per object."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from infra.topology import WORKLOADS
from tests.platform.checks.common import Problems, _env_of, _rules, _selects, _template_defaults
from tests.platform.checks.hops import pod_fit_problems, pod_security_problems
from tests.platform.deployment import Deployment
from tests.platform.upstream import argo_workflows_schemas, versions


def check_schemas(dep: Deployment) -> Problems:
    """Argo Workflows objects (and the Workflows the Sensor creates) validate against the CRDs of exactly
    the pinned Argo version, unknown fields rejected as the API server's strict validation does."""
    schemas = argo_workflows_schemas()
    problems = []
    docs = [
        d for d in dep.objects if d.get("apiVersion", "").startswith("argoproj.io/") and d["kind"] in schemas
    ]
    for sensor in dep.of_kind("Sensor"):
        for trig in sensor["spec"].get("triggers", []):
            t = trig.get("template", {})
            res = (t.get("k8s") or t.get("argoWorkflow") or {}).get("source", {}).get("resource")
            if res and res.get("kind") in schemas:
                docs.append({**res, "metadata": {**res.get("metadata", {}), "name": "from-sensor"}})
    for doc in docs:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        validator = jsonschema.Draft7Validator(schemas[doc["kind"]])
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path))[:5]:
            where = "/".join(str(p) for p in error.path)
            problems.append(
                f"{doc['kind']}/{doc['metadata'].get('name')}: Argo {versions()['apps']['argo_workflows']} "
                f"rejects {where or '(root)'}: {error.message[:200]}"
            )
    return problems


_DURATION = re.compile(r"^(\d+)([smhd])$")


def seconds(text: str) -> int:
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"duration {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def cron_period_seconds(schedule: str) -> int:
    """The longest gap between runs of a 5-field cron schedule (the forms the platform uses)."""
    minute, hour, dom, month, dow = schedule.split()
    if hour == "*" and dom == month == dow == "*" and minute.isdigit():
        return 3600
    if hour.startswith("*/") and dom == month == dow == "*":
        return int(hour[2:]) * 3600
    if hour.isdigit() and dom == month == "*" and dow == "*":
        return 86400
    if hour.isdigit() and dom == month == "*" and dow != "*":
        return 7 * 86400
    raise ValueError(f"cron schedule {schedule!r}: period not understood")


def check_timings(dep: Deployment) -> Problems:
    """Durations that must fit inside each other: a CronJob finishes before its next run, the stale alert
    waits longer than a run takes, the drift window covers the gap between runs, the retraining workflow's
    deadline covers its steps, the canary analysis's retries fit its deadline."""
    problems = []
    rules = _rules(dep)
    stale = [r for r in rules if r.get("alert") == "SentimentDriftJobStale"]
    stale_s = None
    if stale:
        m = re.search(r">\s*(\d+)\s*\*\s*3600", stale[0]["expr"])
        stale_s = int(m.group(1)) * 3600 if m else None
    for cj in dep.of_kind("CronJob"):
        name = cj["metadata"]["name"]
        period = cron_period_seconds(cj["spec"]["schedule"])
        job = cj["spec"]["jobTemplate"]["spec"]
        deadline = job.get("activeDeadlineSeconds")
        if deadline is None or deadline >= period:
            problems.append(
                f"CronJob {name}: activeDeadlineSeconds {deadline} does not end a run before the next ({period}s)"
            )
        if stale_s is not None and "drift" in name and stale_s <= period + (deadline or 0):
            problems.append(
                f"SentimentDriftJobStale fires after {stale_s}s, but CronJob {name} may take {period + (deadline or 0)}s between successes"
            )
        envs = {
            e["name"]: e.get("value") for c in job["template"]["spec"]["containers"] for e in c.get("env", [])
        }
        window = envs.get("SENTIMENTOPS_WINDOW_HOURS")
        if window is not None and float(window) * 3600 < period:
            problems.append(
                f"CronJob {name}: a {window} h window leaves payload logs between runs unchecked ({period}s)"
            )
    retrain = dep.find("WorkflowTemplate", "sentiment-retrain", "sentimentops")
    if retrain is not None:
        by_name = {t["name"]: t for t in retrain["spec"]["templates"]}
        dag = next(t["dag"]["tasks"] for t in retrain["spec"]["templates"] if "dag" in t)
        finish: dict[str, int] = {}
        for task in dag:  # generated in topological order
            start = max([finish[d] for d in task.get("dependencies") or []] or [0])
            finish[task["name"]] = start + int(by_name[task["template"]].get("activeDeadlineSeconds", 0))
        longest = max(finish.values())
        if retrain["spec"].get("activeDeadlineSeconds", 0) < longest:
            problems.append(
                f"sentiment-retrain: activeDeadlineSeconds {retrain['spec'].get('activeDeadlineSeconds')} is shorter than "
                f"its critical path of step deadlines ({longest}s): a slow but healthy run is killed"
            )
    canary = dep.find("WorkflowTemplate", "canary-analysis", "sentimentops")
    if canary is not None:
        analyse = next((t for t in canary["spec"]["templates"] if t["name"] == "analyse"), None)
        params = {p["name"]: p.get("value") for p in canary["spec"]["arguments"]["parameters"]}
        if analyse is not None:
            retry = analyse.get("retryStrategy", {})
            total = int(retry.get("limit", 0)) * seconds(retry.get("backoff", {}).get("duration", "0s"))
            if total < seconds(params.get("analysis-window", "0s")):
                problems.append(
                    f"canary-analysis: HOLD retries cover {total}s, less than the analysis window"
                )
            if canary["spec"].get("activeDeadlineSeconds", 0) <= total:
                problems.append(
                    "canary-analysis: activeDeadlineSeconds ends the workflow before its HOLD retries do"
                )
    return problems


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def check_alert_selectors(dep: Deployment) -> Problems:
    """Alert rules and dashboard queries select the names the deployment really produces: CronJob job
    names, the Pushgateway job, WorkflowTemplate names; controller metrics exist in the pinned Argo
    version and are scraped."""
    from monitoring.drift.push import JOB as DRIFT_JOB

    problems = []
    cronjobs = [cj["metadata"]["name"] for cj in dep.of_kind("CronJob")]
    templates = [wt["metadata"]["name"] for wt in dep.of_kind("WorkflowTemplate")]
    argo_version = tuple(int(x) for x in versions()["apps"]["argo_workflows"].lstrip("v").split(".")[:2])
    queries = [(r.get("alert") or r.get("record"), r["expr"]) for r in _rules(dep)] + _dashboard_queries(dep)
    argo_scraped = _argo_metrics_scraped(dep)
    for name, expr in queries:
        for metric, body in _SELECTOR.findall(expr):
            for label, op, value in _MATCHER.findall(body):
                if metric.startswith("kube_job") and label == "job_name":
                    pattern = value if op == "=~" else re.escape(value)
                    if not any(re.fullmatch(pattern, f"{cj}-29123456") for cj in cronjobs):
                        problems.append(
                            f'{name}: {metric}{{job_name{op}"{value}"}} matches no Job of CronJobs {cronjobs}'
                        )
                if metric.startswith("sentiment_drift") and label == "job" and value != DRIFT_JOB:
                    problems.append(f'{name}: {metric}{{job="{value}"}}, the drift job pushes as {DRIFT_JOB}')
                if metric == "up" and label == "job":
                    pattern = value if op == "=~" else re.escape(value)
                    jobs = _scrape_jobs(dep)
                    if not any(re.fullmatch(pattern, job) for job in jobs):
                        problems.append(
                            f'{name}: up{{job{op}"{value}"}} matches no scrape job ({sorted(jobs)})'
                        )
                if (
                    metric.startswith("argo_workflows")
                    and label == "name"
                    and op == "="
                    and value not in templates
                ):
                    problems.append(f'{name}: {metric}{{name="{value}"}} is no WorkflowTemplate')
            if metric.startswith("argo_workflows_"):
                if argo_version < (3, 6):
                    problems.append(f"{name}: {metric} exists only from Argo Workflows 3.6")
                if not argo_scraped:
                    problems.append(
                        f"{name}: {metric}: no ServiceMonitor scrapes the Argo controller's metrics"
                    )
    return problems


def _scrape_jobs(dep: Deployment) -> set[str]:
    """The `job` label Prometheus gives each monitor's targets: <namespace>/<name> for a PodMonitor, the
    Service's name (or its jobLabel) for a ServiceMonitor."""
    jobs = set()
    for monitor in dep.of_kind("PodMonitor"):
        jobs.add(f"{monitor['metadata']['namespace']}/{monitor['metadata']['name']}")
    for monitor in dep.of_kind("ServiceMonitor"):
        for svc in dep.of_kind("Service"):
            if svc["metadata"]["namespace"] == monitor["metadata"]["namespace"] and _selects(
                monitor["spec"].get("selector"), svc["metadata"].get("labels", {})
            ):
                label = monitor["spec"].get("jobLabel")
                jobs.add(
                    svc["metadata"].get("labels", {}).get(label, svc["metadata"]["name"])
                    if label
                    else svc["metadata"]["name"]
                )
    return jobs


def _dashboard_queries(dep: Deployment) -> list[tuple[str, str]]:
    """(dashboard/panel, PromQL) of every Grafana dashboard ConfigMap the deployment ships."""
    import json

    out = []
    for cm in dep.of_kind("ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            if not key.endswith(".json"):
                continue
            dashboard = json.loads(text)
            for panel in dashboard.get("panels", []):
                for target in panel.get("targets", []):
                    if target.get("expr"):
                        out.append((f"{key}/{panel.get('title')}", target["expr"]))
    return out


def _argo_metrics_scraped(dep: Deployment) -> bool:
    controller = [p for p in dep.pods() if p.source.endswith("workflow-controller")]
    monitors = [m for m in dep.addon_objects if m.get("kind") == "ServiceMonitor"]
    for monitor in monitors:
        for svc in dep.addon_objects:
            if svc.get("kind") != "Service" or not _selects(
                monitor["spec"].get("selector"), svc["metadata"].get("labels", {})
            ):
                continue
            if any(
                all(p.labels.get(k) == v for k, v in (svc["spec"].get("selector") or {}).items())
                for p in controller
            ):
                ports = {p.get("name") for p in svc["spec"].get("ports", [])}
                if any(e.get("port") in ports for e in monitor["spec"].get("endpoints", [])):
                    return True
    return False


def check_argocd(dep: Deployment) -> Problems:
    """Argo CD: every Application's path exists and renders, in the project we define, to namespaces the
    project allows, with kinds it allows; and everything the platform needs is synced by something."""
    problems = []
    projects = {p["metadata"]["name"]: p for p in dep.argocd if p.get("kind") == "AppProject"}
    apps = [a for a in dep.argocd if a.get("kind") == "Application"]
    for app in apps:
        name, spec = app["metadata"]["name"], app["spec"]
        project = projects.get(spec["project"])
        if project is None:
            problems.append(f"Application {name}: project {spec['project']} is not defined here")
            continue
        if spec["source"]["repoURL"] not in project["spec"].get("sourceRepos", []):
            problems.append(
                f"Application {name}: repo {spec['source']['repoURL']} is not in project {spec['project']}"
            )
        allowed_ns = {d["namespace"] for d in project["spec"].get("destinations", [])}
        allowed_kinds = {
            (k.get("group", ""), k["kind"]) for k in project["spec"].get("namespaceResourceWhitelist", [])
        }
        for doc in dep.argocd_sources.get(name, []):
            ns = doc["metadata"].get("namespace")
            if ns not in allowed_ns:
                problems.append(
                    f"Application {name}: {doc['kind']}/{doc['metadata']['name']} goes to {ns}, outside project {spec['project']}"
                )
            group = doc["apiVersion"].rpartition("/")[0]
            if (group, doc["kind"]) not in allowed_kinds:
                problems.append(
                    f"Application {name}: kind {doc['kind']} ({group or 'core'}) is not allowed by project {spec['project']}"
                )
    needed = {
        "helm/sentimentops": "the platform chart",
        f"workflows/manifests/{dep.env.name}": "the Argo templates",
        f"k8s/overlays/{dep.env.name}": "the InferenceService",
    }
    synced = {a["spec"]["source"]["path"] for a in apps}
    for path, what in needed.items():
        if path not in synced:
            problems.append(f"nothing syncs {path} ({what}) in {dep.env.name}")
    for w in WORKLOADS.values():
        if w.owner == "sentimentops" and dep.find(w.kind, w.object, w.ns(dep.env)) is None:
            problems.append(f"{w.name}: {w.kind}/{w.object} is synced by no Application")
    return problems


def check_terraform_environment(dep: Deployment) -> Problems:
    """The environment's tfvars describe the cluster the topology assumes."""
    env, tf = dep.env, dep.tfvars
    wanted = {
        "project_id": env.project,
        "serving_namespace": env.serving_namespace,
        "k8s_namespace": "sentimentops",
        "cpu_machine_type": env.cpu_pool.machine_type,
        "gpu_machine_type": env.gpu_pool.machine_type,
        "gpu_accelerator_type": env.gpu_pool.gpu,
        "region": env.region,
        "cpu_max_nodes": env.cpu_pool.max_nodes,
        "gpu_max_nodes": env.gpu_pool.max_nodes,
    }
    return [
        f"{env.name}.tfvars: {k} = {tf.get(k)!r}, the topology says {v!r}"
        for k, v in wanted.items()
        if tf.get(k) != v
    ]


def check_batch_score_capacity(dep: Deployment) -> Problems:
    """The batch-score fan-out fits the CPU pool Terraform builds: its DAG parallelism times the shard pod's
    CPU request stays within the pool at its autoscaling ceiling (tfvars cpu_max_nodes), leaving room for
    the rest of the platform; otherwise shard pods sit Pending and starve the predictors' scale-up."""
    from infra.topology import NodePool
    from workflows.cluster import BATCH_SCORE_POOL_SHARE, cpu_millicores

    template = dep.find("WorkflowTemplate", "batch-score")
    if template is None:
        return [f"{dep.env.name}: no batch-score WorkflowTemplate is deployed"]
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    problems = []
    for dag in (t for t in templates.values() if "dag" in t):
        for task in dag["dag"]["tasks"]:
            if "withParam" not in task:
                continue
            parallel = dag.get("parallelism")
            if not isinstance(parallel, int) or parallel < 1:
                problems.append(f"batch-score: the fan-out over {task['name']} has no parallelism bound")
                continue
            request = cpu_millicores(
                str(templates[task["template"]]["container"]["resources"]["requests"]["cpu"])
            )
            # A node of the machine type Terraform builds (tfvars), not the topology's own assumption.
            per_node = NodePool("cpu", dep.tfvars["cpu_machine_type"]).room()[0] // request
            ceiling = per_node * int(dep.tfvars["cpu_max_nodes"])
            if parallel > ceiling * BATCH_SCORE_POOL_SHARE:
                problems.append(
                    f"batch-score: {parallel} {task['name']} pods of {request}m CPU at once, but the CPU pool "
                    f"holds {ceiling} such pods at cpu_max_nodes={dep.tfvars['cpu_max_nodes']} and a batch "
                    f"run may take {BATCH_SCORE_POOL_SHARE:.0%} of it"
                )
    return problems


def check_all_pods(dep: Deployment) -> Problems:
    """PodSecurity and node fit for every pod, the add-ons' included."""
    problems = []
    for pod in dep.pods():
        problems += pod_security_problems(dep, pod)
        if pod.owner == "sentimentops":
            problems += pod_fit_problems(dep, pod)
    return problems


def _eventbus_version(dep: Deployment) -> Problems:
    """Each EventBus asks for a JetStream version the installed Argo Events controller knows."""
    import yaml

    known: set[str] = set()
    for cm in dep.addon_objects:
        if cm.get("kind") == "ConfigMap" and "controller-config.yaml" in (cm.get("data") or {}):
            config = yaml.safe_load(cm["data"]["controller-config.yaml"]) or {}
            known |= {
                str(v["version"])
                for v in (config.get("eventBus") or {}).get("jetstream", {}).get("versions", [])
            }
    return [
        f"EventBus {bus['metadata']['name']}: JetStream {bus['spec']['jetstream'].get('version')} is not one of the "
        f"versions Argo Events {versions()['apps']['argo_events']} ships ({sorted(known)})"
        for bus in dep.of_kind("EventBus")
        if "jetstream" in bus["spec"] and str(bus["spec"]["jetstream"].get("version")) not in known
    ]


def _retrain_runs_serialised(dep: Deployment) -> Problems:
    """A cron run and a drift run never overlap: both create Workflows from the template, whose mutex the
    pinned Argo honours (``synchronization.mutexes``: v3.6+; a Workflow from workflowTemplateRef inherits
    the template's spec)."""
    retrain = dep.find("WorkflowTemplate", "sentiment-retrain", "sentimentops")
    if retrain is None:
        return ["no sentiment-retrain template"]
    problems = []
    mutexes = (retrain["spec"].get("synchronization") or {}).get("mutexes") or []
    if not mutexes:
        problems.append("sentiment-retrain has no synchronization.mutexes: cron and drift runs may overlap")
    argo = tuple(int(x) for x in versions()["apps"]["argo_workflows"].lstrip("v").split(".")[:2])
    if argo < (3, 6):
        problems.append(f"Argo {versions()['apps']['argo_workflows']} ignores synchronization.mutexes (3.6+)")
    for cron in dep.of_kind("CronWorkflow"):
        if (cron["spec"]["workflowSpec"].get("workflowTemplateRef") or {}).get("name") != "sentiment-retrain":
            continue
        if cron["spec"].get("concurrencyPolicy") != "Forbid":
            problems.append(f"CronWorkflow {cron['metadata']['name']}: concurrencyPolicy is not Forbid")
        if cron["spec"]["workflowSpec"].get("synchronization"):
            problems.append(
                f"CronWorkflow {cron['metadata']['name']}: overrides the template's synchronization"
            )
    return problems


def _registered_models_granted(dep: Deployment, retrain: dict[str, str]) -> Problems:
    """The model the retrain template registers by default is one the MLflow bootstrap Job grants the
    pipeline and the rollout (default permission READ: an ungranted model is refused at register)."""
    job = next(
        (p for p in dep.pods() if p.source.startswith("Job/") and "mlflow-auth-bootstrap" in p.source), None
    )
    if job is None:
        return ["no MLflow auth bootstrap Job: nothing grants the pipeline EDIT on a registered model"]
    env = _env_of(job)
    granted = {env.get("SENTIMENTOPS_REGISTERED_MODEL", "")}
    granted |= {n.strip() for n in env.get("SENTIMENTOPS_OTHER_REGISTERED_MODELS", "").split(",")}
    model = retrain.get("registered_model", "")
    if model not in granted - {""}:
        return [
            f"sentiment-retrain registers {model!r}, but the MLflow bootstrap grants only "
            f"{sorted(granted - {''})}: register would be refused"
        ]
    return []


def check_handoffs(dep: Deployment) -> Problems:
    """What one part writes is where the next part reads: the predictor's payload sink is the drift job's
    log root, the drift reference is where register publishes it, the base model and training data come
    from the environment's buckets (the cluster has no route to the model hub)."""
    from monitoring.drift.reference import VERSION_PLACEHOLDER

    problems = []
    pods = dep.pods()
    predictor = [p for p in pods if p.source.startswith("InferenceService/")]
    drift = [p for p in pods if p.source == "CronJob/sentimentops-drift"]
    if not predictor or not drift:
        return ["the predictor or the drift CronJob is not deployed"]
    sink = _env_of(predictor[0]).get("SENTIMENTOPS_PAYLOAD_LOG_URI")
    drift_env = _env_of(drift[0])
    if not sink:
        problems.append(
            "the predictor writes no payload log (SENTIMENTOPS_PAYLOAD_LOG_URI unset): drift never sees data"
        )
    elif sink.rstrip("/") != drift_env.get("SENTIMENTOPS_LOG_ROOT", "").rstrip("/"):
        problems.append(
            f"the predictor logs to {sink}, the drift job reads {drift_env.get('SENTIMENTOPS_LOG_ROOT')}"
        )
    pinned = _env_of(predictor[0]).get("SENTIMENTOPS_EXPECTED_MODEL_DIGEST", "")
    isvc = next(d for d in dep.of_kind("InferenceService"))
    annotated = (isvc["metadata"].get("annotations") or {}).get("sentimentops.io/model-digest")
    if not re.fullmatch(r"[0-9a-f]{64}", pinned):
        problems.append(
            "the predictor has no pinned model digest (SENTIMENTOPS_EXPECTED_MODEL_DIGEST): it never becomes ready"
        )
    elif pinned != annotated:
        problems.append(
            f"the predictor's pinned digest {pinned[:12]}… differs from the annotation {str(annotated)[:12]}…"
        )
    rate = _env_of(predictor[0]).get("SENTIMENTOPS_PAYLOAD_LOG_SAMPLE_RATE")
    if rate is not None and float(rate) != dep.env.payload_log_sample_rate:
        problems.append(f"payload sample rate {rate}, the topology says {dep.env.payload_log_sample_rate}")
    retrain = _template_defaults(dep, "sentiment-retrain")
    published = retrain.get("drift_reference_root", "").rstrip("/")
    reference = drift_env.get("SENTIMENTOPS_REFERENCE_URI", "")
    if not published:
        problems.append("sentiment-retrain publishes no drift reference (drift_reference_root is empty)")
    elif reference != f"{published}/{VERSION_PLACEHOLDER}":
        problems.append(
            f"register publishes references under {published}/<version>, the drift job reads {reference}"
        )
    for name in ("base_model", "dataset_uri"):
        value = retrain.get(name) or ""
        if name == "dataset_uri" and not value:
            continue  # required at submission; the cron and sensor pass it (checked under references)
        if not value.startswith("gs://"):
            problems.append(
                f"sentiment-retrain {name} default {value!r} needs the internet; the training pods have none"
            )
    problems += _retrain_runs_serialised(dep)
    problems += _eventbus_version(dep)
    isvc = next(iter(dep.of_kind("InferenceService")), None)
    model_name = drift_env.get("SENTIMENTOPS_MODEL_NAME")
    if isvc is not None and model_name != isvc["metadata"]["name"]:
        problems.append(
            f"the drift job reads logs of model {model_name!r}, the predictor logs as {isvc['metadata']['name']!r}"
        )
    problems += _registered_models_granted(dep, retrain)
    for pod in pods:
        if (
            pod.source.startswith("WorkflowTemplate/sentiment-retrain/")
            and _env_of(pod).get("HF_HUB_OFFLINE") != "1"
        ):
            problems.append(
                f"{pod.source}: HF_HUB_OFFLINE is not 1 (a hub lookup would hang until the deadline)"
            )
    return problems


# Manifests that are not synced by Argo CD on purpose: chart templates (rendered), Terraform's local chart,
# kustomization files, the Argo CD bootstrap itself, and test fixtures.
_NOT_SYNCED = (
    "tests/",
    "helm/sentimentops/templates/",
    "infra/terraform/modules/addons/charts/",
    "k8s/argocd/",
)


def manifest_files() -> list[Any]:
    """Every Kubernetes manifest file of the repository that a cluster could be given."""
    from tests.conftest import REPO_ROOT

    out = []
    for path in sorted(REPO_ROOT.rglob("*.y*ml")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith((".", *_NOT_SYNCED)) or "/." in rel or path.name.startswith("kustomization."):
            continue
        text = path.read_text(errors="replace")
        if re.search(r"^kind:\s", text, re.M) and re.search(r"^apiVersion:\s", text, re.M):
            out.append(path)
    return out


def check_single_source(dep: Deployment, files: list[Any] | None = None) -> Problems:
    """One source for every deployed object: no object is synced twice, and every manifest file in the
    repository is synced by an Application or is a generated copy (marked GENERATED)."""
    import yaml

    problems = []
    seen: dict[tuple[str, str, str], str] = {}
    for doc in dep.objects:
        key = (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace", ""))
        if key in seen:
            problems.append(
                f"{key[0]} {key[2]}/{key[1]} is deployed twice ({seen[key]}; {doc.get('_source')})"
            )
        seen[key] = str(doc.get("_source"))
    synced = {(kind, name) for kind, name, _ in seen}
    for path in manifest_files() if files is None else files:
        text = path.read_text()
        if "GENERATED by" in text.split("\n", 2)[0] or "Generated from" in text.split("\n", 2)[0]:
            continue
        for doc in yaml.safe_load_all(text):
            if (
                isinstance(doc, dict)
                and doc.get("kind")
                and (doc["kind"], doc.get("metadata", {}).get("name")) not in synced
            ):
                problems.append(
                    f"{path.name}: {doc['kind']}/{doc.get('metadata', {}).get('name')} is deployed by nothing (a copy?)"
                )
    return problems
