# Write the CSV files of two Cochrane data packages built from real Cochrane reviews, with
# every stored result computed by metafor (R 4.2, metafor 3.8-1, metadat 1.2-0):
#
#   nrt2018/   version 1 layout (before 23 September 2024), as Fleiss1993.zip: Hartmann-Boyce
#              et al. 2018, Cochrane CD000146 (metadat's dat.hartmannboyce2018), Analysis 1.1
#              "any NRT vs control", abstinence at 6+ months, M-H risk ratio, fixed effect,
#              subgrouped by type of NRT (133 studies in 136 rows: Moolchan 2005 and Piper
#              2009 are multi-arm). metafor's rma.mh is RevMan's M-H (no zero cells here).
#   damico2009/ version 2 layout (RevMan Web since 23 September 2024; column names from R
#              meta's read.cdir, development branch): D'Amico et al. 2009, Cochrane CD000022
#              (metadat's dat.damico2009), respiratory tract infections, inverse-variance odds
#              ratio, random effects with REML, Hartung-Knapp-Sidik-Jonkman interval and a
#              prediction interval, subgrouped by blinding; the review's allocation
#              concealment and blinding as risk-of-bias judgements.
#
# Usage (once; tests never run R):
#   Rscript tests/data/revman/make_packages.R /tmp/packages
#   python tests/data/revman/pack.py /tmp/packages tests/data/revman
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "packages"
ctl <- list(tol = 1e-12, threshold = 1e-14, maxiter = 1000)

write_bom_csv <- function(df, path) {
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  con <- file(path, open = "wb")
  writeBin(as.raw(c(0xef, 0xbb, 0xbf)), con)
  body <- capture.output(write.csv(df, row.names = FALSE, na = "", quote = TRUE))
  writeBin(charToRaw(enc2utf8(paste0(paste(body, collapse = "\n"), "\n"))), con)
  close(con)
}
num <- function(x, digits = 10) ifelse(is.na(x), NA, formatC(x, digits = digits, format = "g"))

# ---------------------------------------------------------------- nrt2018 (version 1)
d <- dat.hartmannboyce2018
d$treatment <- factor(d$treatment, levels = unique(d$treatment))
levels_nrt <- levels(d$treatment)
mh <- function(x) rma.mh(measure = "RR", ai = x.nrt, n1i = n.nrt, ci = x.ctrl, n2i = n.ctrl,
                         data = x)
overall <- mh(d)
w <- weights(overall)
es <- summary(escalc("RR", ai = x.nrt, n1i = n.nrt, ci = x.ctrl, n2i = n.ctrl, data = d))
rows <- data.frame(
  "Analysis group" = 1, "Analysis number" = 1,
  "Analysis name" = "Abstinence at 6+ months: any type of NRT versus control",
  "Subgroup" = as.character(d$treatment), "Applicability" = "SUBGROUP_AND_OVERALL",
  "Study" = d$study, "Study year" = sub(".* ", "", d$study),
  "GIV Mean" = 0, "GIV SE" = 0, "Experimental mean" = 0, "Experimental SD" = 0,
  "Experimental cases" = d$x.nrt, "Experimental N" = d$n.nrt, "Control mean" = 0,
  "Control SD" = 0, "Control cases" = d$x.ctrl, "Control N" = d$n.ctrl, "O-E" = 0,
  "Variance" = 0, "Weight" = num(w), "Mean" = num(exp(es$yi)), "CI start" = num(exp(es$ci.lb)),
  "CI end" = num(exp(es$ci.ub)), "Footnotes" = NA, check.names = FALSE)
fits <- lapply(levels_nrt, function(l) mh(d[d$treatment == l, ]))
est <- sapply(fits, function(f) f$b)
se <- sapply(fits, function(f) f$se)
between <- rma(yi = est, sei = se, method = "FE")
pct <- function(q, df) if (df > 0) max(0, (q - df) / q) * 100 else NA
sub <- do.call(rbind, lapply(seq_along(levels_nrt), function(j) {
  f <- fits[[j]]; x <- d[d$treatment == levels_nrt[j], ]
  df <- f$k - 1
  data.frame("Analysis group" = 1, "Analysis number" = 1, "Subgroup" = levels_nrt[j],
             "Subgroup number" = j, "Experimental cases" = sum(x$x.nrt),
             "Experimental N" = sum(x$n.nrt), "Control cases" = sum(x$x.ctrl),
             "Control N" = sum(x$n.ctrl), "Weight" = num(sum(w[d$treatment == levels_nrt[j]])),
             "Mean" = num(exp(f$b)), "CI start" = num(exp(f$ci.lb)), "CI end" = num(exp(f$ci.ub)),
             "Heterogeneity Tau²" = NA, "Heterogeneity Chi²" = if (df > 0) num(f$QE) else NA,
             "Heterogeneity df" = df, "Heterogeneity P" = if (df > 0) num(f$QEp) else NA,
             "Heterogeneity I²" = num(pct(f$QE, df)), "Effect Z" = num(abs(f$zval)),
             "Effect P" = num(f$pval), "ID" = paste0("subgroup:", j), check.names = FALSE)
}))
settings <- data.frame(
  "Analysis group" = 1, "Analysis number" = 1,
  "Analysis name" = "Abstinence at 6+ months: any type of NRT versus control",
  "Analysis group name" = "Nicotine replacement therapy versus placebo or no NRT control",
  "Data source" = "Custom input", "Data source eligibility" = "#N/A",
  "Data type" = "Dichotomous", "Log-scale data" = "true", "Outcome" = NA,
  "Intervention grouping" = NA, "Experimental intervention" = NA, "Control intervention" = NA,
  "Subgroup by" = "Type of NRT", "Filter criteria" = NA, "Experimental group label" = "NRT",
  "Control group label" = "Control", "Statistical method" = "MH",
  "Effect measure" = "Risk Ratio", "Unit of effect measure" = NA,
  "Analysis model" = "Fixed effect", "Subgroup estimates" = "true",
  "Overall estimates" = "true", "Test for subgroup differences" = "true",
  "Swap event and non-event" = "false", "Study CI" = "95%", "Estimate CI" = "95%",
  "Experimental cases" = sum(d$x.nrt), "Experimental N" = sum(d$n.nrt),
  "Control cases" = sum(d$x.ctrl), "Control N" = sum(d$n.ctrl),
  "Mean" = num(exp(overall$b)), "CI start" = num(exp(overall$ci.lb)),
  "CI end" = num(exp(overall$ci.ub)), "Heterogeneity Tau²" = NA,
  "Heterogeneity Chi²" = num(overall$QE), "Heterogeneity df" = overall$k - 1,
  "Heterogeneity P" = num(overall$QEp), "Heterogeneity I²" = num(pct(overall$QE, overall$k - 1)),
  "Effect Z" = num(abs(overall$zval)), "Effect P" = num(overall$pval),
  "Subgroup Chi²" = num(between$QE), "Subgroup df" = length(levels_nrt) - 1,
  "Subgroup P" = num(between$QEp), "Subgroup I²" = num(pct(between$QE, length(levels_nrt) - 1)),
  "ID" = "analysis:1", check.names = FALSE)
studies <- unique(data.frame("Study" = d$study, "Year" = sub(".* ", "", d$study),
                             "Data source" = "PUB", check.names = FALSE))
base <- file.path(out, "nrt2018", "CD000146", "CD000146-files", "CD000146-data")
write_bom_csv(settings, file.path(base, "CD000146-analysis-data",
                                  "CD000146-overall-estimates-and-settings.csv"))
write_bom_csv(rows, file.path(base, "CD000146-analysis-data", "CD000146-data-rows.csv"))
write_bom_csv(sub, file.path(base, "CD000146-analysis-data", "CD000146-subgroup-estimates.csv"))
write_bom_csv(studies, file.path(base, "CD000146-study-data", "CD000146-study-information.csv"))
# The forest plot's graph labels, as RevMan Web draws them (the only place a version 1
# package holds them): the last two text elements, right-aligned left of the null line.
svg <- paste0(
  '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 844 340">',
  '<text x="10" y="41" text-anchor="start">Study or Subgroup</text>',
  '<text x="689.3" y="301" text-anchor="end"><tspan>Favours control</tspan></text>',
  '<text x="729.3" y="301" text-anchor="start"><tspan>Favours NRT</tspan></text></svg>')
writeLines(svg, file.path(out, "nrt2018", "CD000146", "CD000146-files", "CD000146-CMP-001.01.svg"))
cat(sprintf("nrt2018 overall RR %.4f [%.4f, %.4f] (published: 1.55 [1.49, 1.61])\n",
            exp(overall$b), exp(overall$ci.lb), exp(overall$ci.ub)))

# ---------------------------------------------------------------- damico2009 (version 2)
d <- dat.damico2009
d$study <- paste(d$study, d$year)
d$blinding <- factor(ifelse(d$blind == 1, "Double-blind", "Open"),
                     levels = c("Double-blind", "Open"))
dat <- escalc("OR", ai = xt, n1i = nt, ci = xc, n2i = nc, data = d)
re <- function(x) rma(yi, vi, data = x, method = "REML", test = "knha", control = ctl)
qp <- function(x) confint(rma(yi, vi, data = x, method = "REML", control = ctl),
                          control = list(tol = 1e-12))$random[1, 2:3]
overall <- re(dat)
w <- weights(overall)
es <- summary(dat)
rows <- data.frame(
  "Analysis group" = 1, "Analysis number" = 1,
  "Analysis name" = "Respiratory tract infections", "Subgroup" = as.character(d$blinding),
  "Applicability" = "SUBGROUP_AND_OVERALL", "Study" = d$study, "Study year" = d$year,
  "GIV Mean" = 0, "GIV SE" = 0, "Experimental mean" = 0, "Experimental SD" = 0,
  "Experimental cases" = d$xt, "Experimental N" = d$nt, "Control mean" = 0, "Control SD" = 0,
  "Control cases" = d$xc, "Control N" = d$nc, "O-E" = 0, "Variance" = 0, "Weight" = num(w),
  "Mean" = num(exp(es$yi)), "CI start" = num(exp(es$ci.lb)), "CI end" = num(exp(es$ci.ub)),
  "Footnotes" = NA, check.names = FALSE)
lv <- levels(d$blinding)
fits <- lapply(lv, function(l) re(dat[d$blinding == l, ]))
between <- rma(yi = sapply(fits, function(f) f$b), sei = sapply(fits, function(f) f$se),
               method = "FE")
results <- function(f, x) {
  p <- predict(f); ci <- qp(x)
  list("Experimental cases" = sum(x$xt), "Experimental N" = sum(x$nt),
       "Control cases" = sum(x$xc), "Control N" = sum(x$nc), "Mean" = num(exp(f$b)),
       "CI start" = num(exp(f$ci.lb)), "CI end" = num(exp(f$ci.ub)),
       "Heterogeneity Tau²" = num(f$tau2), "Tau² CI start" = num(ci[1]),
       "Tau² CI end" = num(ci[2]), "Heterogeneity Chi²" = num(f$QE),
       "Heterogeneity df" = f$k - 1, "Heterogeneity P" = num(f$QEp),
       "Heterogeneity I²" = num(f$I2), "Effect Z" = num(abs(f$zval)), "Effect P" = num(f$pval),
       "PI start" = num(exp(p$pi.lb)), "PI end" = num(exp(p$pi.ub)))
}
sub <- do.call(rbind, lapply(seq_along(lv), function(j) {
  x <- dat[d$blinding == lv[j], ]
  data.frame(c(list("Analysis group" = 1, "Analysis number" = 1, "Subgroup" = lv[j],
                    "Subgroup number" = j, "Weight" = num(sum(w[d$blinding == lv[j]]))),
               results(fits[[j]], x), list("ID" = paste0("subgroup:", j))), check.names = FALSE)
}))
settings <- data.frame(c(
  list("Analysis group" = 1, "Analysis number" = 1,
       "Analysis name" = "Respiratory tract infections",
       "Analysis group name" = "Topical plus systemic antibiotics versus no prophylaxis",
       "Data source" = "Custom input", "Data source eligibility" = "#N/A",
       "Data type" = "Dichotomous", "Log-scale data" = "true",
       "Experimental group label" = "Antibiotics", "Control group label" = "No prophylaxis",
       "Statistical method" = "IV", "Effect measure" = "Odds Ratio",
       "Unit of effect measure" = NA, "Analysis model" = "Random effects",
       "Heterogeneity estimator" = "Restricted maximum likelihood (REML)",
       "Subgroup estimates" = "true", "Overall estimates" = "true",
       "Test for subgroup differences" = "true", "Prediction interval" = "true",
       "Swap event and non-event" = "false", "CI method" = "Hartung-Knapp-Sidik-Jonkman",
       "CI/PI level" = "95%", "Graph label (left)" = "Favours antibiotics",
       "Graph label (right)" = "Favours no prophylaxis", "Graph scale" = 100,
       "Show risk of bias" = "true", "Tau² CI" = "true"),
  results(overall, dat),
  list("Subgroup Chi²" = num(between$QE), "Subgroup df" = length(lv) - 1,
       "Subgroup P" = num(between$QEp), "Subgroup I²" = num(pct(between$QE, length(lv) - 1)),
       "ID" = "analysis:1")), check.names = FALSE)
rob <- data.frame(
  "Study" = d$study,
  "Domain (judgement): Allocation concealment (selection bias)" =
    ifelse(d$conceal == 1, "Low risk", "High risk"),
  "Domain (support): Allocation concealment (selection bias)" =
    ifelse(d$conceal == 1, "Adequate concealment", "Not adequate"),
  "Domain (judgement): Blinding of participants and personnel (performance bias)" =
    ifelse(d$blind == 1, "Low risk", "High risk"),
  "Domain (support): Blinding of participants and personnel (performance bias)" =
    ifelse(d$blind == 1, "Double-blind", "Open"), check.names = FALSE)
studies <- data.frame("Study" = d$study, "Year" = d$year, "Data source" = "PUB",
                      check.names = FALSE)
base <- file.path(out, "damico2009", "CD000022-dataPackage")
write_bom_csv(settings, file.path(base, "CD000022-analysis-data",
                                  "CD000022-overall-estimates-and-settings.csv"))
write_bom_csv(rows, file.path(base, "CD000022-analysis-data", "CD000022-data-rows.csv"))
write_bom_csv(sub, file.path(base, "CD000022-analysis-data", "CD000022-subgroup-estimates.csv"))
write_bom_csv(studies, file.path(base, "CD000022-study-data", "CD000022-study-information.csv"))
write_bom_csv(rob, file.path(base, "CD000022-study-data", "CD000022-risk-of-bias.csv"))
cat(sprintf("damico2009 overall OR %.4f [%.4f, %.4f], tau2 %.4f\n", exp(overall$b),
            exp(overall$ci.lb), exp(overall$ci.ub), overall$tau2))
