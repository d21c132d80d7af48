"""Data: the bundled datasets with binary and count responses (lme4's cbpp, grouseticks, VerbAgg).

Registered in :mod:`bayesmlm.datasets.catalogue` beside the Gaussian ones; loaded the same way
(grouping columns as labelled categoricals).
"""

from __future__ import annotations

from bayesmlm.datasets.entry import Column, Dataset

__all__ = ["GENERALIZED"]

GENERALIZED: tuple[Dataset, ...] = (
    Dataset(
        name="cbpp",
        filename="cbpp.csv",
        title="Contagious bovine pleuropneumonia in herds",
        n_rows=56,
        summary=(
            "lme4's cbpp: new serological cases of contagious bovine pleuropneumonia in 15 zebu herds "
            "in Ethiopia, counted in four periods (not all herds in every period). A binomial "
            "response: incidence cases among size animals, "
            "cbind(incidence, size - incidence) ~ period + (1 | herd)."
        ),
        columns=(
            Column("herd", "group", "herd, 15 levels ('1', ..., '15')"),
            Column("incidence", "int", "number of new serological cases in the period"),
            Column("size", "int", "herd size at the beginning of the period"),
            Column("period", "group", "period, 4 levels ('1', ..., '4')"),
        ),
        source=(
            "lme4 (R package), dataset cbpp. Lesnoff, M., Laval, G., Bonnet, P., et al. (2004). "
            "Within-herd spread of contagious bovine pleuropneumonia in Ethiopian highlands. "
            "Preventive Veterinary Medicine 64, 27-40."
        ),
    ),
    Dataset(
        name="grouseticks",
        filename="grouseticks.csv",
        title="Ticks on red grouse chicks",
        n_rows=403,
        summary=(
            "lme4's grouseticks: the number of ticks on the heads of 403 red grouse chicks from 118 "
            "broods at 63 locations (broods nested in locations), in three years. A count response: "
            "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)."
        ),
        columns=(
            Column("INDEX", "group", "chick, 403 levels ('1', ..., '403')"),
            Column("TICKS", "int", "number of ticks counted on the chick's head"),
            Column("BROOD", "group", "brood, 118 levels"),
            Column("HEIGHT", "int", "height above sea level of the location (m)"),
            Column("YEAR", "group", "year, 3 levels ('95', '96', '97')"),
            Column("LOCATION", "group", "location, 63 levels"),
            Column("cHEIGHT", "float", "HEIGHT centred at its mean (m)"),
        ),
        source=(
            "lme4 (R package), dataset grouseticks. Elston, D. A., Moss, R., Boulinier, T., Arrowsmith, "
            "C. and Lambin, X. (2001). Analysis of aggregation, a worked example: numbers of ticks on "
            "red grouse chicks. Parasitology 122, 563-569."
        ),
    ),
    Dataset(
        name="VerbAgg",
        filename="VerbAgg.csv",
        title="Verbal aggression questionnaire",
        n_rows=7584,
        summary=(
            "lme4's VerbAgg: 316 people answered 24 items on verbal aggression in frustrating "
            "situations (subjects and items crossed). r2 is 1 for 'perhaps' or 'yes', 0 for 'no': "
            "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)."
        ),
        columns=(
            Column("Anger", "int", "the subject's trait anger score (11 to 39)"),
            Column("Gender", "group", "the subject's gender, 2 levels ('F', 'M')"),
            Column("item", "group", "questionnaire item, 24 levels ('S1DoCurse', ...)"),
            Column("resp", "group", "the answer, 3 levels ('no', 'perhaps', 'yes')"),
            Column("id", "group", "subject, 316 levels ('1', ..., '316')"),
            Column("btype", "group", "behaviour, 3 levels ('curse', 'scold', 'shout')"),
            Column("situ", "group", "situation, 2 levels ('other': others to blame, 'self')"),
            Column("mode", "group", "behavioural mode, 2 levels ('do', 'want')"),
            Column("r2", "int", "1 if resp is 'perhaps' or 'yes', else 0"),
        ),
        source=(
            "lme4 (R package), dataset VerbAgg. De Boeck, P. and Wilson, M. (eds) (2004). Explanatory "
            "Item Response Models. Springer."
        ),
    ),
)
