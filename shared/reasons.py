"""Every code a customer can be told about, with its wording in zh-CN and en.

Scoring emits reason and advice codes, policy emits closure reasons, categories and bounds;
notification renders them. The wording lives here, once, so no service invents its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ADVICE",
    "ALTERNATIVE_FINANCING",
    "BOUNDS",
    "CATEGORIES",
    "CLOSURE_REASONS",
    "DRAWDOWN_REASONS",
    "EDUCATION",
    "LOCALES",
    "PROGRAMMES",
    "REASONS",
    "REASON_ADVICE",
    "REGULATORY_RULES",
    "RULE_THRESHOLDS",
    "SEGMENT_NAMES",
    "SUSPENSION_REASONS_TEXT",
    "SYSTEM_NEXT_STEP",
    "Advice",
    "Text",
    "reason_code",
]

LocaleName = Literal["zh-CN", "en"]
LOCALES: tuple[LocaleName, ...] = ("zh-CN", "en")


@dataclass(frozen=True, slots=True)
class Text:
    zh: str
    en: str

    def __call__(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


@dataclass(frozen=True, slots=True)
class Advice:
    """What the customer can do, and how long it usually takes to show."""

    text: Text
    typical: Text


def reason_code(characteristic: str) -> str:
    return f"R_{characteristic.upper()}"


# Principal reasons: one per scorecard characteristic ("what cost you the most points").
REASONS: dict[str, Text] = {
    reason_code("checking_account"): Text("支票账户状态(余额偏低或无账户)", "Status of your checking account (low or negative balance)"),
    reason_code("duration_months"): Text("申请期限较长", "The long duration you asked for"),
    reason_code("credit_history"): Text("信用历史记录的类型(可证明的按时还款记录较少)", "The kind of credit history on record (little proven on-time repayment)"),
    reason_code("purpose"): Text("借款用途的历史风险较高", "The purpose of the credit carries more risk historically"),
    reason_code("credit_amount"): Text("申请金额相对偏高", "The amount asked for is high"),
    reason_code("savings"): Text("储蓄或理财资产较少", "Little in savings or bonds"),
    reason_code("employment_since"): Text("当前工作年限较短", "Short time in your present employment"),
    reason_code("installment_rate_pct"): Text("月供占可支配收入比例较高", "Installments take a high share of disposable income"),
    reason_code("other_debtors"): Text("无担保人或共同借款人", "No guarantor or co-applicant"),
    reason_code("residence_since_years"): Text("当前住址居住时间较短", "Short time at your present residence"),
    reason_code("property"): Text("可证明的资产较少", "Little property on record"),
    reason_code("age_years"): Text("年龄段的历史还款表现", "Repayment history of your age band"),
    reason_code("other_installment_plans"): Text("在其他机构有分期计划", "Installment plans elsewhere"),
    reason_code("housing"): Text("住房情况", "Your housing situation"),
    reason_code("existing_credits"): Text("本平台已有借款笔数较多", "Number of existing credits with us"),
    reason_code("job"): Text("职业类别", "Your type of job"),
    reason_code("dependents"): Text("需抚养人数", "Number of dependents"),
    reason_code("telephone"): Text("未登记本人名下的电话", "No telephone registered in your name"),
}

# Recourse advice: changes a person can act on (never age, never history that cannot be undone).
ADVICE: dict[str, Advice] = {
    "A_SHORTER_DURATION": Advice(
        Text("选择更短的借款期限(例如 {target} 个月以内)", "Apply for a shorter duration (e.g. {target} months or less)"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    "A_LOWER_AMOUNT": Advice(
        Text("降低申请金额(例如 {target} 以内)", "Ask for a lower amount (e.g. up to {target})"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    "A_LOWER_INSTALLMENT_RATE": Advice(
        Text("将月供降到可支配收入的 {target}% 以内", "Lower the installment to {target}% of disposable income or less"),
        Text("通常 1-3 个月", "usually 1-3 months"),
    ),
    "A_BUILD_SAVINGS": Advice(
        Text("积累储蓄(例如达到 {target})", "Build up savings (e.g. to {target})"),
        Text("通常 3-6 个月", "usually 3-6 months"),
    ),
    "A_CHECKING_BALANCE": Advice(
        Text("保持支票账户余额为正({target})", "Keep a positive checking balance ({target})"),
        Text("通常 1-3 个月", "usually 1-3 months"),
    ),
    "A_FEWER_INSTALLMENT_PLANS": Advice(
        Text("结清其他机构的分期计划", "Pay off installment plans elsewhere"),
        Text("结清后下次申请生效", "effective on your next application after paying off"),
    ),
    "A_ADD_GUARANTOR": Advice(
        Text("增加担保人或共同借款人", "Add a guarantor or co-applicant"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    "A_REGISTER_TELEPHONE": Advice(
        Text("在本人名下登记联系电话", "Register a telephone in your own name"),
        Text("通常 1 周内", "usually within a week"),
    ),
    "A_FEWER_EXISTING_CREDITS": Advice(
        Text("先结清部分现有借款(例如降到 {target} 笔)", "Repay some existing credits first (e.g. down to {target})"),
        Text("结清后下次申请生效", "effective on your next application after repaying"),
    ),
    "A_WAIT_OVERDUE": Advice(
        Text("保持按时还款,逾期记录满 12 个月后不再影响", "Keep paying on time: an overdue stops counting after 12 months"),
        Text("最近一次逾期满 12 个月后", "12 months after the last overdue"),
    ),
    "A_FEWER_INQUIRIES": Advice(
        Text("近期减少信用查询与新的借款申请", "Make fewer credit applications for a while"),
        Text("通常 3 个月", "usually 3 months"),
    ),
}

# What to do about each principal reason when the scorecard found no concrete target for it
# (its recourse covers only the characteristics a person can act on). Honest where nothing is to
# be done: age, job, housing and dependents are never things we ask someone to change.
REASON_ADVICE: dict[str, Advice] = {
    reason_code("checking_account"): Advice(
        Text("保持支票账户余额为正,并逐步提高余额", "Keep your checking account in credit and build up its balance"),
        Text("通常 1-3 个月", "usually 1-3 months"),
    ),
    reason_code("duration_months"): Advice(
        Text("选择更短的借款期限", "Apply for a shorter duration"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    reason_code("credit_history"): Advice(
        Text("按时偿还所有现有借款,过往逾期的影响会随时间减弱", "Repay every current credit on time: past delays weigh less as time goes by"),
        Text("通常 6-12 个月", "usually 6-12 months"),
    ),
    reason_code("purpose"): Advice(
        Text("用途本身无需改变,改善这里列出的其他因素作用更大", "The purpose itself need not change: improving the other factors listed helps more"),
        Text("取决于其他因素的改善", "depends on the other factors"),
    ),
    reason_code("credit_amount"): Advice(
        Text("降低申请金额", "Ask for a lower amount"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    reason_code("savings"): Advice(
        Text("积累储蓄或理财资产", "Build up savings or bonds"),
        Text("通常 3-6 个月", "usually 3-6 months"),
    ),
    reason_code("employment_since"): Advice(
        Text("在当前工作岗位的年限增长后,此项会自然改善", "This improves by itself as you stay longer in your present job"),
        Text("通常 1 年以上", "usually a year or more"),
    ),
    reason_code("installment_rate_pct"): Advice(
        Text("降低月供占可支配收入的比例(例如先结清部分借款)", "Lower your installments as a share of disposable income (e.g. repay some credit first)"),
        Text("通常 1-3 个月", "usually 1-3 months"),
    ),
    reason_code("other_debtors"): Advice(
        Text("增加担保人或共同借款人", "Add a guarantor or co-applicant"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    reason_code("residence_since_years"): Advice(
        Text("在当前住址居住的时间增长后,此项会自然改善", "This improves by itself the longer you live at your present address"),
        Text("通常 1 年以上", "usually a year or more"),
    ),
    reason_code("property"): Advice(
        Text("申请时登记名下的资产(如房产、储蓄型保险或车辆)", "Declare property you own (real estate, savings insurance or a car) when you apply"),
        Text("下次申请即可生效", "takes effect on your next application"),
    ),
    reason_code("age_years"): Advice(
        Text("年龄不是您需要改变的因素,请关注这里列出的其他因素", "Age is nothing you need to change: focus on the other factors listed"),
        Text("不适用", "not applicable"),
    ),
    reason_code("other_installment_plans"): Advice(
        Text("结清其他机构的分期计划", "Pay off installment plans elsewhere"),
        Text("结清后下次申请生效", "effective on your next application after paying off"),
    ),
    reason_code("housing"): Advice(
        Text("住房情况无需为此改变,请关注这里列出的其他因素", "Your housing need not change for this: focus on the other factors listed"),
        Text("不适用", "not applicable"),
    ),
    reason_code("existing_credits"): Advice(
        Text("先结清部分现有借款", "Repay some existing credits first"),
        Text("结清后下次申请生效", "effective on your next application after repaying"),
    ),
    reason_code("job"): Advice(
        Text("职业类别无需为此改变,请关注这里列出的其他因素", "Your type of job need not change for this: focus on the other factors listed"),
        Text("不适用", "not applicable"),
    ),
    reason_code("dependents"): Advice(
        Text("抚养人数无需为此改变,请关注这里列出的其他因素", "The number of dependents need not change for this: focus on the other factors listed"),
        Text("不适用", "not applicable"),
    ),
    reason_code("telephone"): Advice(
        Text("在本人名下登记联系电话", "Register a telephone in your own name"),
        Text("通常 1 周内", "usually within a week"),
    ),
}

CATEGORIES: dict[str, Text] = {
    "credit": Text("信用评估结果", "a credit assessment"),
    "strategy": Text("平台策略调整,与您的信用无关", "a platform decision, not about your credit"),
    "system": Text("系统技术原因,与您的信用无关", "a technical problem, not about your credit"),
    "regulatory": Text("监管规定的额度上限", "a regulatory limit"),
}

# Why a window closed, per policy rule.
CLOSURE_REASONS: dict[str, Text] = {
    "score_below_cutoff": Text("综合信用评分未达到当前标准", "Your credit score is below the current cut-off"),
    "knockout_recent_overdue": Text("近 12 个月内有逾期记录", "An overdue payment in the last 12 months"),
    "own_overdue": Text("您在本平台的借款有逾期", "A repayment of a loan with us is overdue, or was recently"),
    "knockout_inquiries": Text("近 3 个月信用查询次数过多", "Too many credit inquiries in the last 3 months"),
    "unprofitable_risk": Text("按当前风险水平无法提供可持续的定价", "Your risk level does not allow a sustainable price at present"),
    "segment_paused": Text("平台暂停了该客群的新额度发放", "The platform has paused new windows for your segment"),
    "region_paused": Text("平台暂停了您所在地区的新额度发放", "The platform has paused new windows in your region"),
    "channel_paused": Text("平台暂停了该申请渠道", "The platform has paused this application channel"),
    "budget_exhausted": Text("本期额度预算已用完", "This period's credit budget is spent"),
    "budget_paced": Text(
        "本期额度预算趋紧,平台正在放缓新额度的发放", "This period's credit budget is running low, so the platform is pacing new windows"
    ),
    "maintenance": Text("系统维护中", "Scheduled maintenance"),
    "scoring_failed": Text("评分服务暂时无法处理您的申请", "Your application could not be scored"),
    "application_invalid": Text("申请信息无法读取", "Your application could not be read"),
    "dependency_unavailable": Text("依赖服务暂时不可用", "A service we depend on is unavailable"),
    "income_cap": Text("按收入计算的监管上限不足以开通额度", "The income-based regulatory cap leaves no room for a limit"),
    "absolute_cap": Text("已达到每人借款总额上限", "The per-person absolute cap is reached"),
    "below_minimum_limit": Text("可提供的额度低于最低开通额度", "The limit available is below the minimum we open"),
    "expired": Text("额度有效期已到期", "Your window reached the end of its validity"),
    "newer_application": Text(
        "您之后提交的申请已有结果,本次申请不再改变您的额度", "A newer application of yours has been decided; this one no longer changes your window"
    ),
    "cycle_cutoff": Text(
        "您的评分达到平时的标准,但在当前经济周期平台临时提高了准入门槛",
        "Your score meets our usual cut-off, but the platform has raised it for the current economic cycle",
    ),
    "limit_multiplier": Text(
        "平台目前主动下调了您所在客群的额度,调整后低于最低开通额度",
        "The platform is currently lowering limits for your group, which leaves less than the minimum we open",
    ),
    # The same neutral words whatever the operator's reason (identity check, suspected fraud, ...).
    "customer_suspended": Text("您账户的新申请暂时无法受理", "New applications on your account cannot be accepted for now"),
}

# Why a drawdown was refused (with the category; a closed window's own reason is said too).
DRAWDOWN_REASONS: dict[str, Text] = {
    "no_window": Text("您目前没有可用的借款额度", "You have no borrowing window at present"),
    "window_closed": Text("您的借款额度目前未开放", "Your borrowing window is not open at present"),
    "window_expired": Text("您的借款额度已到期", "Your borrowing window has reached the end of its validity"),
    "above_available": Text("借款金额超过了当前可用额度", "The amount is more than is available to draw"),
    "balance_cap": Text(
        "借款后余额将超过监管规定的上限", "Your balance after it would exceed the regulatory cap"
    ),
    "term_not_offered": Text("平台目前不提供您选择的借款期限", "We do not offer the term you chose at present"),
    "own_overdue": Text("您在本平台有逾期未还的分期", "An instalment of a loan with us is overdue"),
}

# What bounded an opened window's limit.
BOUNDS: dict[str, Text] = {
    "risk_grade": Text("您的风险等级与收入对应的额度", "the limit for your risk grade and income"),
    "requested_amount": Text("您申请的金额", "the amount you asked for"),
    # {share}: the rule's fraction of annual income, in words (the decision carries the rule, not an amount)
    "income_cap": Text("监管规定:余额不超过年收入的{share}", "regulation: balance at most {share} of annual income"),
    "absolute_cap": Text("监管规定:每人借款总额上限", "regulation: the absolute cap per person"),
    "segment_budget": Text("本期客群额度预算的剩余部分", "what is left of this period's segment budget"),
    "reviewer": Text("工作人员人工复核后确定的额度", "the limit a member of our staff set on review"),
}

# The rule behind a regulatory closure, as the customer reads it. {share}: the income rule's share of
# annual income in words (from the decision, so it is the policy's own: a quarter says a quarter);
# {cap}: the absolute cap in CNY.
REGULATORY_RULES: dict[str, Text] = {
    "income_cap": Text(
        "监管规定:每人在本平台的借款余额不得超过其年收入的{share}。",
        "The rule: a person's balance with us may be at most {share} of their annual income.",
    ),
    "absolute_cap": Text(
        "监管规定:每人在本平台的借款余额不得超过{cap},这一上限对所有客户相同。",
        "The rule: a person's balance with us may not exceed {cap}, a cap that is the same for everyone.",
    ),
    "balance_cap": Text(
        "监管规定:每人在本平台的借款余额不得超过其年收入的规定比例,也不得超过统一的绝对上限。",
        "The rule: a person's balance with us may be at most a set share of their annual income, and never above a fixed absolute cap.",
    ),
}

# Credit education (加强信用教育): each credit rule with its threshold, as the decision carries it.
# {threshold}, {value}, {months}: the rule's figures; a `:none` variant words a threshold of zero.
RULE_THRESHOLDS: dict[str, Text] = {
    "knockout_inquiries": Text(
        "规则:近 {months} 个月内硬查询(机构为审批申请而查询您的信用报告)超过 {threshold} 次,暂不开通额度。您的记录:{value} 次。",
        "The rule: more than {threshold} hard inquiries (a lender checking your credit report to decide an application) "
        "in {months} months keep the window closed. On your record: {value}.",
    ),
    "knockout_recent_overdue": Text(
        "规则:近 {months} 个月内逾期超过 {threshold} 次,暂不开通额度。您的记录:{value} 次。每次逾期自应还款日起满 {months} 个月后不再计入。",
        "The rule: more than {threshold} overdue payments in the last {months} months keep the window closed. On your "
        "record: {value}. An overdue stops counting {months} months after the payment was due.",
    ),
    "knockout_recent_overdue:none": Text(
        "规则:近 {months} 个月内有任何逾期,暂不开通额度。您的记录:{value} 次。每次逾期自应还款日起满 {months} 个月后不再计入。",
        "The rule: any overdue payment in the last {months} months keeps the window closed. On your record: {value}. "
        "An overdue stops counting {months} months after the payment was due.",
    ),
    "own_overdue": Text(
        "规则:在本平台有逾期未还的分期,或近 {months} 个月内在本平台的逾期超过 {threshold} 天,暂不开通额度。您的记录:最长逾期 {value} 天。",
        "The rule: an instalment with us overdue now, or one more than {threshold} days past due in the last {months} months, keeps "
        "the window closed. On your record: {value} days at worst.",
    ),
    "own_overdue:none": Text(
        "规则:在本平台有逾期未还的分期,或近 {months} 个月内在本平台有任何逾期,暂不开通额度。您的记录:最长逾期 {value} 天。",
        "The rule: an instalment with us overdue now, or any overdue with us in the last {months} months, keeps the window "
        "closed. On your record: {value} days at worst.",
    ),
    "score_below_cutoff": Text("规则:综合信用评分需达到 {threshold} 分。", "The rule: a credit score of at least {threshold} points."),
    "below_minimum_limit": Text("规则:可提供的额度低于 {threshold} 时不开通。", "The rule: we do not open a window for less than {threshold}."),
}

# Other words of the messages' education lines.
EDUCATION: dict[str, Text] = {
    "score": Text("您的评分:{points} 分,风险等级 {grade}(A 最好,G 最弱)。", "Your score: {points} points, risk grade {grade} (A is best, G weakest)."),
    "score_against_cutoff": Text(
        "您的评分:{points} 分(标准为 {cutoff} 分),风险等级 {grade}(A 最好,G 最弱)。",
        "Your score: {points} points (the cut-off is {cutoff}), risk grade {grade} (A is best, G weakest).",
    ),
    "cycle": Text(
        "宏观周期系数 ×{factor}:平台根据经济周期统一{direction}所有额度。",
        "Cycle factor x{factor}: the platform {direction} every limit with the economic cycle.",
    ),
    "cycle_tighter": Text("收紧", "tightens"),
    "cycle_looser": Text("放宽", "loosens"),
    "programme": Text("{programme}:额度 ×{boost}。", "{programme}: limit x{boost}."),
    "not_credit": Text("这与您的信用无关。", "This is not about your credit."),
    "own_overdue_now": Text(
        "您在本平台的记录:有分期已逾期 {days} 天,逾期金额 {amount}。还清后,该逾期在本平台的记录中还会计入 {months} 个月。",
        "On your record with us: an instalment {days} days past due, {amount} overdue. Once paid, it still counts on "
        "your record with us for {months} months.",
    ),
    "own_overdue_counts": Text(
        "您在本平台的记录:最长逾期 {days} 天,已还清;该记录计入至 {until},届时可再次申请。",
        "On your record with us: {days} days past due at worst, since paid; it counts until {until}: apply again from then.",
    ),
}

# Segment programmes by name, as customers read them (an unknown name: the generic words).
PROGRAMMES: dict[str, Text] = {
    "small_business_boost": Text("小微企业主额度提升计划", "The small-business boost programme"),
    "": Text("客群额度计划", "A segment programme"),
}

# One sentence for small-business owners whose window is not open (issue 15): other channels exist.
ALTERNATIVE_FINANCING = Text(
    "作为小微企业主,您也可以考虑其他融资渠道,例如银行的小微企业贷款,或基于您的交易往来的供应链金融。",
    "As a small-business owner, you can also consider other financing channels, such as a bank's small-business loan "
    "or supply-chain finance based on your trade.",
)

# What happens next after a system closure, per reason: only a maintenance closure is decided again
# by itself; an application that could not be read or scored must be made again.
SYSTEM_NEXT_STEP: dict[str, Text] = {
    "maintenance": Text(
        "维护将于 {retry_after} 结束,届时我们会自动重新决定,您无需重新申请。",
        "The maintenance ends at {retry_after}; we will then decide again by ourselves, and you need not apply again.",
    ),
    "application_invalid": Text(
        "我们无法读取这次申请的信息,因此无法作出决定。请核对申请信息后重新提交申请。",
        "We could not read this application, so we could not decide it. Please check your details and apply again.",
    ),
    "scoring_failed": Text("请在 {retry_after} 之后重新申请。", "Please apply again after {retry_after}."),
    "": Text("请在 {retry_after} 之后重新申请。", "Please apply again after {retry_after}."),
}

# Why an operator suspended a customer, for operators (never told to the customer).
SUSPENSION_REASONS_TEXT: dict[str, Text] = {
    "identity_check": Text("身份核验", "identity check"),
    "suspected_fraud": Text("疑似欺诈调查", "suspected fraud under investigation"),
    "customer_request": Text("客户本人要求", "at the customer's request"),
    "collections": Text("催收处理中", "in collections"),
    "legal_order": Text("司法或监管要求", "legal or regulatory order"),
}

# Segments as customers read them.
SEGMENT_NAMES: dict[str, Text] = {
    "individual": Text("个人客户", "individuals"),
    "small_business": Text("小微企业主", "small-business owners"),
}
