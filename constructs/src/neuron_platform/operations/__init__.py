"""Operations: alarms to SNS, the cost guard and the dashboard."""
