"""lmerTest 3.1-3 (Satterthwaite), pbkrtest (Kenward-Roger), lme4 profile intervals and performance R².

Source: shared/reference/small_sample_reference.json and r2_reference.json (REML fits of the bundled
CSVs); BODYWEIGHT_LME4 and CONVERGED were computed with R here (see their comments). Per model:
``satterthwaite`` / ``kenward_roger`` term -> (se, df, p); ``anova_*`` term -> (F, num_df, den_df, p),
type III; ``profile_ci95`` lme4 parameter -> (lower, upper). Kept here so the tests state the numbers
they check; lme4's names are mapped to bayesmlm's by ``bayesmlm_name``.
"""

import re

# fmt: off
SMALL_SAMPLE = {'sleep_ri': {'data': 'sleepstudy',
              'formula': 'Reaction ~ Days + (1|Subject)',
              'satterthwaite': {'(Intercept)': (9.74671626920939, 22.8101989552553, 2.24135095934467e-18),
                                'Days': (0.80422142894524, 161.000000054592, 6.41260123102367e-27)},
              'kenward_roger': {'(Intercept)': (9.74671626920939, 22.8101990921784, 2.24135057858959e-18),
                                'Days': (0.80422142894524, 161, 6.41260126766919e-27)},
              'anova_satterthwaite': {'Days': (169.401361333161,
                                               1,
                                               161.000000054592,
                                               6.41260123102367e-27)},
              'anova_kenward_roger': {'Days': (169.401361333161, 1, 161, 6.41260126766923e-27)}},
 'sleep_max': {'data': 'sleepstudy',
               'formula': 'Reaction ~ Days + (Days|Subject)',
               'satterthwaite': {'(Intercept)': (6.82459669495491, 16.9997262884927, 1.17155811120826e-17),
                                 'Days': (1.54578964390598, 16.9999837255917, 3.26382446992738e-06)},
               'kenward_roger': {'(Intercept)': (6.82459669495491, 17, 1.17100331571078e-17),
                                 'Days': (1.54578964390598, 17.0000000000005, 3.26380801814764e-06)},
               'anova_satterthwaite': {'Days': (45.8529615558586,
                                                1,
                                                16.9999837255917,
                                                3.26382446992738e-06)},
               'anova_kenward_roger': {'Days': (45.8529615558584,
                                                1,
                                                17.0000000000005,
                                                3.26380801814764e-06)},
               'profile_ci95': {'sd_(Intercept)|Subject': (14.3814181607732, 37.7159953182866),
                                'cor_Days.(Intercept)|Subject': (-0.481500758280773, 0.684986273295485),
                                'sd_Days|Subject': (3.8011640532591, 8.75338075305527),
                                'sigma': (22.8982668820808, 28.8579965114253),
                                '(Intercept)': (237.680695505234, 265.129514680174),
                                'Days': (7.35865327511699, 13.5759187517082)}},
 'sleep_uncorr': {'data': 'sleepstudy',
                  'formula': 'Reaction ~ Days + (Days||Subject)',
                  'satterthwaite': {'(Intercept)': (6.88538081723721,
                                                    18.1561960496399,
                                                    1.89338069062316e-18),
                                    'Days': (1.55956909806857, 18.1560912912543, 2.59409711410537e-06)},
                  'kenward_roger': {'(Intercept)': (6.88538081723722,
                                                    18.1874704787764,
                                                    1.79604096955374e-18),
                                    'Days': (1.55956909806857, 18.187470478776, 2.57091828484745e-06)},
                  'anova_satterthwaite': {'Days': (45.046280344773,
                                                   1,
                                                   18.1560912912543,
                                                   2.59409711410537e-06)},
                  'anova_kenward_roger': {'Days': (45.046280344773,
                                                   1,
                                                   18.187470478776,
                                                   2.57091828484745e-06)}},
 'oxboys_max': {'data': 'Oxboys',
                'formula': 'height ~ age + (age|Subject)',
                'satterthwaite': {'(Intercept)': (1.58542084322492, 24.9998384978432, 2.01953140871393e-33),
                                  'age': (0.33629865014627, 24.998909803489, 1.38055890759616e-16)},
                'kenward_roger': {'(Intercept)': (1.58542084326205, 24.9999999996438, 2.01872970745002e-33),
                                  'age': (0.336298651813717, 24.9999993321492, 1.37914936980889e-16)},
                'anova_satterthwaite': {'age': (376.507098271483,
                                                1,
                                                24.998909803489,
                                                1.38055890759616e-16)},
                'anova_kenward_roger': {'age': (376.507094537864,
                                                1,
                                                24.9999993321492,
                                                1.3791493698089e-16)}},
 'dyestuff': {'data': 'Dyestuff',
              'formula': 'Yield ~ 1 + (1|Batch)',
              'satterthwaite': {'(Intercept)': (19.3834121787528, 4.99999998109234, 6.23447599535079e-09)},
              'kenward_roger': {'(Intercept)': (19.3834121787528, 5, 6.23447562365746e-09)},
              'profile_ci95': {'sd_(Intercept)|Batch': (12.198535213114, 84.0630467107707),
                               'sigma': (38.229984882571, 67.6576962448221),
                               '(Intercept)': (1486.45149996883, 1568.54849436812)}},
 'penicillin_crossed': {'data': 'Penicillin',
                        'formula': 'diameter ~ 1 + (1|plate) + (1|sample)',
                        'satterthwaite': {'(Intercept)': (0.808595361386344,
                                                          5.48659236245505,
                                                          3.62352024057688e-07)},
                        'kenward_roger': {'(Intercept)': (0.80859536138626,
                                                          5.4870618604518,
                                                          3.61997538873013e-07)},
                        'profile_ci95': {'sd_(Intercept)|plate': (0.633565966954977, 1.18210397596899),
                                         'sd_(Intercept)|sample': (1.09578930235763, 3.55629095260836),
                                         'sigma': (0.485845400185307, 0.629453478450691),
                                         '(Intercept)': (21.2666273836243, 24.6778176161738)}},
 'pastes_nested': {'data': 'Pastes',
                   'formula': 'strength ~ 1 + (1|batch/cask)',
                   'satterthwaite': {'(Intercept)': (0.676870215074031,
                                                     8.99999754463259,
                                                     1.48784721703534e-14)},
                   'kenward_roger': {'(Intercept)': (0.676870215074026,
                                                     8.99999999999937,
                                                     1.48783647493477e-14)}},
 'bodyweight': {'data': 'BodyWeight',
                'formula': 'weight ~ Time * Diet + (Time|Rat)',
                'satterthwaite': {'(Intercept)': (13.0586517012696, 13.1055927646278, 5.31898503336241e-11),
                                  'Time': (0.0911331824919095, 13.0036443505537, 0.0016723164047189),
                                  'Diet2': (22.6182482249425, 13.1055929795549, 6.66175310977788e-07),
                                  'Diet3': (22.6182482249425, 13.1055929793108, 4.65916612968013e-08),
                                  'Time:Diet2': (0.157847302331432, 13.0036443571948, 0.00205221726467222),
                                  'Time:Diet3': (0.157847302331432, 13.0036443554046, 0.0812488389074218)},
                'kenward_roger': {'(Intercept)': (13.058651701269, 12.999999999992, 6.06558164345965e-11),
                                  'Time': (0.0911331824919072, 12.999999999999, 0.00167317677670873),
                                  'Diet2': (22.618248224942, 12.9999999999972, 7.08079491291929e-07),
                                  'Diet3': (22.618248224942, 12.9999999999972, 5.04700806421913e-08),
                                  'Time:Diet2': (0.15784730233143, 12.9999999999997, 0.00205320903088889),
                                  'Time:Diet3': (0.15784730233143, 12.9999999999996, 0.0812551899581173)},
                'anova_satterthwaite': {'Time': (94.7029539503593,
                                                 1,
                                                 13.0036443597169,
                                                 2.45913007304988e-07),
                                        'Diet': (77.0605337204397,
                                                 2,
                                                 13.105593006302,
                                                 5.67018968774864e-08),
                                        'Time:Diet': (7.57539759322064,
                                                      2,
                                                      13.0036443573197,
                                                      0.0065880512852766)},
                'anova_kenward_roger': {'Time': (94.7029539503605,
                                                 1,
                                                 12.9999999999998,
                                                 2.46496169911537e-07),
                                        'Diet': (77.0605337204442,
                                                 2,
                                                 12.9999999999979,
                                                 6.1791535014042e-08),
                                        'Time:Diet': (7.57539759322082,
                                                      2,
                                                      12.9999999999997,
                                                      0.00659086557784355)}}}
# fmt: on
# fmt: off
R2 = {'sleep_ri': {'data': 'sleepstudy',
              'formula': 'Reaction ~ Days + (1|Subject)',
              'r2_marginal': 0.279885636748625,
              'r2_conditional': 0.704255452354521,
              'icc_adjusted': 0.589308917113987,
              'icc_conditional': 0.424369815605896},
 'sleep_max': {'data': 'sleepstudy',
               'formula': 'Reaction ~ Days + (Days|Subject)',
               'r2_marginal': 0.278651058161875,
               'r2_conditional': 0.799219922782924,
               'icc_adjusted': 0.721660259588857,
               'icc_conditional': 0.520568864621049},
 'oxboys_max': {'data': 'Oxboys',
                'formula': 'height ~ age + (age|Subject)',
                'r2_marginal': 0.209849570833163,
                'r2_conditional': 0.994888704545177,
                'icc_adjusted': 0.99353123751358,
                'icc_conditional': 0.785039133712015},
 'bodyweight': {'data': 'BodyWeight',
                'formula': 'weight ~ Time * Diet + (Time|Rat)',
                'r2_marginal': 0.916018692635751,
                'r2_conditional': 0.998796375008711,
                'icc_adjusted': 0.985667941723403,
                'icc_conditional': 0.0827776823729595}}
# fmt: on


#: lme4's REML fit of BodyWeight (not in tests/lme4_reference.py), as VarCorr gives it: lme4 1.1-31 stops
#: there with max|grad| 0.017 (REML criterion 1151.719957); lmerTest's and pbkrtest's numbers above are
#: computed at this point.
BODYWEIGHT_LME4 = {
    "sigma": 4.444695339837267,
    "varcorr": [
        {"grp": "Rat", "var1": "(Intercept)", "var2": None, "vcov": 1357.0907409338126},
        {"grp": "Rat", "var1": "Time", "var2": None, "vcov": 0.0616962927063662},
        {"grp": "Rat", "var1": "(Intercept)", "var2": "Time", "vcov": -1.3596466499344186},
        {"grp": "Residual", "var1": None, "var2": None, "vcov": 19.755316663971119},
    ],
}

#: lmerTest 3.1-3 and pbkrtest 0.5.2 (R 4.2.2, lme4 1.1-31) at a converged lme4 fit: lme4's fit refitted
#: from its own theta with nloptwrap (xtol_abs = 1e-14, ftol_rel = 1e-15). BodyWeight: REML criterion
#: 1151.719749 (lme4's default fit: 1151.719957); Penicillin: 330.86058899109 (default 330.86058899961).
#: Same layout as SMALL_SAMPLE.
# fmt: off
CONVERGED = {
    "bodyweight": {
        "satterthwaite": {
            "(Intercept)": (13.0940249124801, 13.0000002849224, 6.27569032945136e-11),
            "Time": (0.0911397405187602, 13.0000001090123, 0.00167407387327515),
            "Diet2": (22.6795164239881, 12.9999999051135, 7.30006829586612e-07),
            "Diet3": (22.6795164239881, 12.9999999045305, 5.21136777255429e-08),
            "Time:Diet2": (0.157858661167137, 13.0000001772344, 0.00205428473610315),
            "Time:Diet3": (0.157858661167137, 13.0000001775553, 0.0812746483324035),
        },
        "anova_satterthwaite": {
            "Time": (94.6893255997627, 1, 13.0000001907398, 2.46700805522563e-07),
            "Diet": (76.6447415398916, 2, 12.9999998574242, 6.38279283732904e-08),
            "Time:Diet": (7.57430744586731, 2, 13.0000001858855, 0.0065941844283672),
        },
        "kenward_roger": {
            "(Intercept)": (13.09402491248, 12.9999999999983, 6.27569255279107e-11),
            "Time": (0.0911397405187607, 13.0000000000003, 0.00167407389903198),
            "Diet2": (22.6795164239879, 12.9999999999986, 7.30006789596132e-07),
            "Diet3": (22.6795164239879, 12.9999999999986, 5.21136739602782e-08),
            "Time:Diet2": (0.157858661167137, 13.0000000000001, 0.00205428478437297),
            "Time:Diet3": (0.157858661167137, 13.0000000000001, 0.0812746486419316),
        },
        "anova_kenward_roger": {
            "Time": (94.6893255997628, 1, 13, 2.46700836105995e-07),
            "Diet": (76.6447415398926, 2, 12.9999999999986, 6.38279209704409e-08),
            "Time:Diet": (7.57430744586726, 2, 13.0000000000001, 0.00659418457201647),
        },
    },
    "penicillin_crossed": {
        "satterthwaite": {"(Intercept)": (0.808573617842469, 5.48708711861393, 3.61925383835023e-07)},
        "kenward_roger": {"(Intercept)": (0.808573617842248, 5.4870918881422, 3.61921785194879e-07)},
    },
}
# fmt: on


#: performance 0.10.2 on the converged lme4 fit of BodyWeight (as CONVERGED); lme4's default fit's
#: numbers are in R2 (its unconverged theta moves the conditional ICC by 0.5%).
R2_CONVERGED = {
    "bodyweight": {
        "r2_marginal": 0.915636108069244,
        "r2_conditional": 0.998797467793426,
        "icc_adjusted": 0.985745889870027,
        "icc_conditional": 0.0831613597241814,
    }
}


def bayesmlm_name(lme4_name: str) -> str:
    """lme4's term or parameter name as bayesmlm spells it.

    (Intercept) -> Intercept, Diet2 -> Diet[2], sd_(Intercept)|Subject -> sd(Intercept|Subject),
    cor_Days.(Intercept)|Subject -> cor(Intercept,Days|Subject).
    """
    name = lme4_name.replace("(Intercept)", "Intercept")
    name = re.sub(r"Diet(\d)", r"Diet[\1]", name)
    if name.startswith("sd_"):
        return f"sd({name[3:]})"
    if name.startswith("cor_"):
        pair, group = name[4:].split("|")
        first, second = pair.split(".")
        return f"cor({second},{first}|{group})"
    return name
