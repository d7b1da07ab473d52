//! `lade build --dry-run`: the plan rendered as text or JSON.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use crate::engine::{Base, ExpandedStage, Plan};

fn base_text(plan: &Plan, base: &Base) -> String {
    match base {
        Base::Scratch => "scratch".into(),
        Base::Image(image) => image.familiar(),
        Base::Stage(i) => format!("stage {}", plan.stages[*i].label()),
    }
}

fn stage_title(plan: &Plan, index: usize) -> String {
    let stage = &plan.stages[index];
    match &stage.name {
        Some(name) => format!("stage {index} \"{name}\""),
        None => format!("stage {index}"),
    }
}

fn shown_step(created_by: &str) -> &str {
    created_by.strip_suffix(" # buildkit").unwrap_or(created_by)
}

pub(super) fn write_plan_text(
    out: &mut impl Write,
    name: &str,
    plan: &Plan,
    expanded: &BTreeMap<usize, ExpandedStage>,
) -> Result<()> {
    writeln!(
        out,
        "Plan for {name}: {} of {} stage(s) needed, target {}",
        plan.order.len(),
        plan.stages.len(),
        stage_title(plan, plan.target)
    )?;
    if !plan.global_args.is_empty() {
        let args: Vec<String> = plan
            .global_args
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        writeln!(out, "Global ARGs: {}", args.join(" "))?;
    }
    let mut sorted = plan.order.clone();
    sorted.sort_unstable();
    for &index in &sorted {
        let stage = &plan.stages[index];
        writeln!(out)?;
        writeln!(
            out,
            "{}: {}  (line {})",
            stage_title(plan, index),
            stage.from_text,
            stage.location.line
        )?;
        writeln!(out, "  base: {}", base_text(plan, &stage.base))?;
        if !stage.deps.is_empty() {
            let deps: Vec<String> = stage.deps.iter().map(|d| plan.stages[*d].label()).collect();
            writeln!(out, "  needs: {}", deps.join(", "))?;
        }
        for step in &expanded[&index].steps {
            let kind = if step.kind.makes_layer() {
                "layer "
            } else {
                "config"
            };
            let trigger = if step.from_onbuild {
                " (ONBUILD trigger)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {:>3}  {kind}  {}{trigger}",
                step.number,
                one_line(shown_step(&step.created_by))
            )?;
        }
    }
    let skipped: Vec<String> = plan
        .stages
        .iter()
        .filter(|s| !plan.order.contains(&s.index))
        .map(|s| s.label())
        .collect();
    if !skipped.is_empty() {
        writeln!(out, "\nNot needed for the target: {}", skipped.join(", "))?;
    }
    writeln!(out, "\nRun order (the stages of a group run in parallel):")?;
    for (i, group) in plan.parallel_groups().iter().enumerate() {
        let names: Vec<String> = group.iter().map(|s| plan.stages[*s].label()).collect();
        writeln!(out, "  {}. {}", i + 1, names.join(", "))?;
    }
    if plan.stages.iter().any(|s| matches!(s.base, Base::Image(_))) {
        writeln!(
            out,
            "\nA dry run reads no image: the ENV, WORKDIR, SHELL and ONBUILD of base images are not applied above."
        )?;
    }
    if !plan.unused_build_args.is_empty() {
        writeln!(
            out,
            "Warning: build args not consumed by any ARG: {}",
            plan.unused_build_args.join(", ")
        )?;
    }
    Ok(())
}

/// Long RUN scripts are shown on one line, shortened.
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if flat.chars().count() > 120 {
        let cut: String = flat.chars().take(117).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

pub(super) fn plan_json(
    name: &str,
    plan: &Plan,
    expanded: &BTreeMap<usize, ExpandedStage>,
) -> Value {
    let mut sorted = plan.order.clone();
    sorted.sort_unstable();
    let stages: Vec<Value> = sorted
        .iter()
        .map(|&index| {
            let stage = &plan.stages[index];
            let base = match &stage.base {
                Base::Scratch => json!("scratch"),
                Base::Image(image) => json!({ "image": image.normalized() }),
                Base::Stage(i) => json!({ "stage": i }),
            };
            let steps: Vec<Value> = expanded[&index]
                .steps
                .iter()
                .map(|step| {
                    json!({
                        "number": step.number,
                        "line": step.location.line,
                        "instruction": step.text,
                        "expanded": shown_step(&step.created_by),
                        "layer": step.kind.makes_layer(),
                        "onbuild_trigger": step.from_onbuild,
                        "step": step.kind,
                    })
                })
                .collect();
            json!({
                "index": index,
                "name": stage.name,
                "from": stage.from_text,
                "line": stage.location.line,
                "base": base,
                "platform": stage.platform,
                "needs": stage.deps,
                "steps": steps,
                "config": expanded[&index].config,
            })
        })
        .collect();
    let global_args: BTreeMap<&String, &Option<String>> =
        plan.global_args.iter().map(|(k, v)| (k, v)).collect();
    json!({
        "dockerfile": name,
        "target": plan.target,
        "global_args": global_args,
        "stages": stages,
        "parallel_groups": plan.parallel_groups(),
        "unused_build_args": plan.unused_build_args,
        "base_images_read": false,
    })
}
