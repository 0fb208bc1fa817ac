//! Column headings for people: Chinese or English, for the HTML and XLSX forms (CSV and JSON
//! keep the stable machine names).

/// The heading of `column` in `language` (`zh` or `en`); the column name when unknown.
pub fn heading(column: &str, language: &str) -> String {
    let zh = match column {
        "date" => "日期",
        "bank_id" => "银行",
        "currency" => "币种",
        "received_count" => "收款笔数",
        "received" => "收款金额",
        "applied" => "已销账",
        "credit" => "预存",
        "held_in_exceptions" => "异常挂账",
        "refunded" => "退款",
        "channels" => "渠道",
        "realtime_vs_file" => "实时与对账文件",
        "expected_transfer" => "应划转金额",
        "settlement" => "清算状态",
        "written_off" => "核销差额",
        "rejected_duplicates" => "重复剔除",
        "reversal_count" => "冲正笔数",
        "reversed" => "冲正金额",
        "debit_count" => "借记笔数",
        "debits" => "借记金额",
        "files" => "文件数",
        "declared_credits" => "对账文件贷方合计",
        "difference" => "差额",
        "reason" => "原因",
        "open_count" => "未处理笔数",
        "open_amount" => "未处理金额",
        "open_0_1_days" => "0-1天",
        "open_2_7_days" => "2-7天",
        "open_8_30_days" => "8-30天",
        "open_over_30_days" => "30天以上",
        "escalated_count" => "已升级笔数",
        "escalated_amount" => "已升级金额",
        "resolved_that_day" => "当日已处理",
        "by" => "维度",
        "group" => "分组",
        "bills" => "账单数",
        "not_yet_due" => "未到期",
        "days_1_30" => "逾期1-30天",
        "days_31_60" => "逾期31-60天",
        "days_61_90" => "逾期61-90天",
        "over_90" => "逾期90天以上",
        "total" => "合计",
        "late_fees" => "违约金",
        "window_from" => "统计起始日",
        "billed" => "应收金额",
        "collected" => "实收金额",
        "collection_rate_pct" => "回收率(%)",
        "avg_days_to_payment" => "平均缴费天数",
        "rank" => "排名",
        "account_no" => "户号",
        "name" => "户名",
        "class" => "用电类别",
        "manager" => "客户经理",
        "share_pct" => "占比(%)",
        "cumulative_pct" => "累计占比(%)",
        "outstanding" => "欠费",
        "on_time" => "按期缴费",
        "late" => "逾期缴费",
        "on_time_rate_pct" => "按期率(%)",
        "avg_days_late" => "平均逾期天数",
        "reversed_payments" => "冲正次数",
        "risk" => "风险",
        _ => "",
    };
    if language == "zh" && !zh.is_empty() {
        zh.to_string()
    } else {
        column.replace('_', " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_column_has_a_chinese_heading() {
        for cols in [
            super::super::settlement::COLUMNS,
            super::super::exceptions::COLUMNS,
            super::super::ageing::COLUMNS,
            super::super::collection::COLUMNS,
            super::super::customers::KEY_COLUMNS,
            super::super::customers::BEHAVIOUR_COLUMNS,
        ] {
            for c in cols {
                let h = heading(c, "zh");
                assert!(!h.is_ascii(), "{c} has no Chinese heading");
            }
        }
        assert_eq!(heading("late_fees", "en"), "late fees");
    }
}
